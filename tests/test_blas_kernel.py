"""The GEMM kernels (tensorgrad/_kernels/blas.pyx) against np.matmul.

Layouts covered: C-contiguous, transposed views (F-like, flag 'T'), column slices (row
stride > ncols), layouts that must be copied (strided both ways, negative strides), length-1
axes with arbitrary strides, broadcast batches, both dtypes, alpha/beta, K = 0.
"""
import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorgrad._kernels import blas

DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-4}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}
LAYOUTS = ["c", "t", "colslice", "strided", "neg"]


def make(rng, rows, cols, dtype, layout):
    """A [rows, cols] array with the requested memory layout and random values."""
    if layout == "c":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if layout == "t":  # F-like: the transpose of a C-contiguous array
        return rng.standard_normal((cols, rows)).astype(dtype).T
    if layout == "colslice":  # C-like with row stride > ncols
        return rng.standard_normal((rows, cols + 3)).astype(dtype)[:, 1:cols + 1]
    if layout == "strided":  # no unit stride: must be copied
        return rng.standard_normal((2 * rows, 2 * cols)).astype(dtype)[::2, ::2]
    if layout == "neg":  # negative row stride: must be copied
        return rng.standard_normal((rows, cols)).astype(dtype)[::-1]
    raise AssertionError(layout)


dims = st.integers(min_value=1, max_value=17)


@settings(max_examples=50, deadline=None)
@given(m=dims, k=st.integers(min_value=0, max_value=17), n=dims,
       la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31 - 1))
def test_gemm_matches_numpy(m, k, n, la, lb, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = make(rng, m, k, dtype, la), make(rng, k, n, dtype, lb)
    a_before, b_before = a.copy(), b.copy()
    out = np.full((m, n), np.nan, dtype=dtype)  # beta = 0 must ignore the old contents
    res = blas.gemm(a, b, out)
    assert res is out
    np.testing.assert_allclose(out, a @ b, **TOL[dtype])
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


@settings(max_examples=40, deadline=None)
@given(m=dims, k=dims, n=dims, la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       alpha=st.sampled_from([1.0, -2.0, 0.5, 0.0]), beta=st.sampled_from([0.0, 1.0, -0.5]),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31 - 1))
def test_gemm_alpha_beta(m, k, n, la, lb, alpha, beta, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = make(rng, m, k, dtype, la), make(rng, k, n, dtype, lb)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    out = c0.copy()
    blas.gemm(a, b, out, alpha=alpha, beta=beta)
    expected = alpha * (a.astype(np.float64) @ b) + beta * c0.astype(np.float64)
    np.testing.assert_allclose(out, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_k_zero(dtype):
    a, b = np.empty((3, 0), dtype), np.empty((0, 4), dtype)
    out = np.full((3, 4), np.nan, dtype)
    blas.gemm(a, b, out)
    np.testing.assert_array_equal(out, np.zeros((3, 4)))
    out = np.full((3, 4), 2.0, dtype)
    blas.gemm(a, b, out, beta=0.5)
    np.testing.assert_array_equal(out, np.ones((3, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_length_one_axes_with_odd_strides(dtype):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((8, 8)).astype(dtype)
    row = base[2:3, :]                   # [1, 8]
    col = base[:, 3:4]                   # [8, 1], row stride 8, col stride meaningless
    row_t = base[:, 5:6].T               # [1, 8] whose last-axis stride is 8: F-like only
    out = np.empty((1, 1), dtype)
    blas.gemm(row, col, out)
    np.testing.assert_allclose(out, row @ col, **TOL[dtype])
    out = np.empty((8, 8), dtype)
    blas.gemm(col, row_t, out)           # outer product
    np.testing.assert_allclose(out, col @ row_t, **TOL[dtype])
    out = np.empty((1, 8), dtype)
    blas.gemm(row_t, base, out)
    np.testing.assert_allclose(out, row_t @ base, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_into_column_slice_of_out(dtype):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 6)).astype(dtype), rng.standard_normal((6, 3)).astype(dtype)
    big = np.zeros((5, 10), dtype)
    blas.gemm(a, b, big[:, 4:7])
    np.testing.assert_allclose(big[:, 4:7], a @ b, **TOL[dtype])
    assert not big[:, :4].any() and not big[:, 7:].any()


def test_gemm_no_copy_for_transposed_weight():
    """gemm(x, W.T, out) must pass W.T to BLAS with flag 'T', not copy it."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1024)).astype(np.float32)
    W = rng.standard_normal((1024, 1024)).astype(np.float32)  # 4 MB
    out = np.empty((4, 1024), np.float32)
    blas.gemm(x, W.T, out)  # warm-up (first-call allocations inside BLAS/numpy)
    tracemalloc.start()
    blas.gemm(x, W.T, out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < W.nbytes // 8, peak
    np.testing.assert_allclose(out, x @ W.T, rtol=1e-4, atol=1e-3)
    # The control: a layout that must be copied does show a W-sized allocation.
    tracemalloc.start()
    blas.gemm(x[:, ::-1].copy(), W[::-1], out)
    _, peak_copy = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_copy >= W.nbytes


def test_gemm_errors():
    f32, f64 = np.float32, np.float64
    with pytest.raises(ValueError, match=r"gemm: shapes do not match"):
        blas.gemm(np.ones((2, 3), f64), np.ones((4, 5), f64), np.empty((2, 5), f64))
    with pytest.raises(TypeError, match="gemm: dtypes differ"):
        blas.gemm(np.ones((2, 3), f32), np.ones((3, 5), f64), np.empty((2, 5), f64))
    with pytest.raises(TypeError, match="gemm"):
        blas.gemm(np.ones((2, 3), int), np.ones((3, 5), int), np.empty((2, 5), int))
    with pytest.raises(ValueError, match="gemm: expected 2-D"):
        blas.gemm(np.ones(3, f64), np.ones((3, 5), f64), np.empty((1, 5), f64))
    with pytest.raises(ValueError, match="unit stride"):
        blas.gemm(np.ones((2, 3), f64), np.ones((3, 5), f64), np.empty((5, 2), f64).T)
    ro = np.empty((2, 5), f64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        blas.gemm(np.ones((2, 3), f64), np.ones((3, 5), f64), ro)


def make3(rng, nb, rows, cols, dtype, layout, broadcast):
    """A [nb, rows, cols] operand; with broadcast, batch stride 0 (or batch size 1)."""
    if broadcast == "stride0":
        return np.broadcast_to(make(rng, rows, cols, dtype, layout), (nb, rows, cols))
    if broadcast == "size1":
        return make(rng, rows, cols, dtype, layout)[None]
    mats = [make(rng, rows, cols, dtype, layout) for _ in range(nb)]
    if layout == "t":  # keep every matrix F-like inside one 3-D array
        return np.stack([m.T for m in mats]).transpose(0, 2, 1)
    if layout == "colslice":
        full = rng.standard_normal((nb, rows, cols + 2)).astype(dtype)
        return full[:, :, 1:cols + 1]
    return np.stack(mats)


@settings(max_examples=40, deadline=None)
@given(nb=st.integers(1, 5), m=dims, k=st.integers(0, 9), n=dims,
       la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       ba=st.sampled_from(["no", "stride0", "size1"]),
       bb=st.sampled_from(["no", "stride0", "size1"]),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31 - 1))
def test_matmul_batched_matches_numpy(nb, m, k, n, la, lb, ba, bb, dtype, seed):
    rng = np.random.default_rng(seed)
    a = make3(rng, nb, m, k, dtype, la, ba)
    b = make3(rng, nb, k, n, dtype, lb, bb)
    out = np.full((nb, m, n), np.nan, dtype)
    blas.matmul_batched(a, b, out)
    np.testing.assert_allclose(out, np.matmul(a, b) * np.ones((nb, 1, 1), dtype),
                               **TOL[dtype])


def test_matmul_batched_errors():
    f64 = np.float64
    with pytest.raises(ValueError, match="matmul_batched: shapes do not match"):
        blas.matmul_batched(np.ones((3, 2, 4), f64), np.ones((2, 4, 5), f64),
                            np.empty((3, 2, 5), f64))
    with pytest.raises(ValueError, match="matmul_batched: expected 3-D"):
        blas.matmul_batched(np.ones((2, 4), f64), np.ones((4, 5), f64),
                            np.empty((2, 5), f64))


def test_zero_row_products_are_empty_not_errors():
    import tensorgrad as tg
    x = tg.zeros(0, 3, requires_grad=True)
    w = tg.ones(3, 4, requires_grad=True)
    y = x @ w
    assert y.shape == (0, 4)
    y.sum().backward()
    assert x.grad.shape == (0, 3)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((3, 4), np.float32))


# --- the BLAS library behind the kernels (tensorgrad/_blas.py) --------------------------------
@pytest.fixture
def scipy_blas():
    """Run a test with the GEMM kernels on scipy's BLAS, then restore the default choice."""
    from tensorgrad import _blas
    _blas.select("scipy")
    try:
        yield _blas.provider()
    finally:
        _blas.select()


def test_default_blas_is_reported_in_show_config():
    import tensorgrad as tg
    name = tg._blas.provider()
    assert name.startswith(("numpy's OpenBLAS", "scipy's BLAS"))
    assert f"gemm       {name}" in tg._runtime.config_text()


@pytest.mark.parametrize("dtype", DTYPES)
def test_scipy_blas_gives_the_same_products(scipy_blas, dtype):
    assert scipy_blas.startswith("scipy's BLAS")
    rng = np.random.default_rng(7)
    for la in LAYOUTS:
        for lb in LAYOUTS:
            a, b = make(rng, 9, 13, dtype, la), make(rng, 13, 6, dtype, lb)
            out = np.full((9, 6), np.nan, dtype=dtype)
            np.testing.assert_allclose(blas.gemm(a, b, out), a @ b, **TOL[dtype])
    a3 = rng.standard_normal((3, 4, 5)).astype(dtype)
    b3 = rng.standard_normal((1, 5, 2)).astype(dtype)
    out3 = np.empty((3, 4, 2), dtype)
    np.testing.assert_allclose(blas.matmul_batched(a3, b3, out3), a3 @ b3, **TOL[dtype])


def test_scipy_blas_runs_the_distance_kernels(scipy_blas):
    import tensorgrad as tg
    rng = np.random.default_rng(3)
    x1 = rng.standard_normal((70, 33))
    x2 = rng.standard_normal((90, 33))
    want = np.sqrt(((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1))
    got = tg.cdist(tg.from_numpy(x1), tg.from_numpy(x2)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_distance_kernels_hold_the_selected_blas_pool():
    # cdist calls BLAS inside its OpenMP loop, so the pool of the library in use must be
    # among those it holds at one thread, even when that library was selected (and loaded)
    # after the list was first made.
    import os

    from threadpoolctl import threadpool_info

    from tensorgrad import _blas, _runtime
    _runtime._blas_controllers()                # the list as it is before the switch
    _blas.select("scipy")
    try:
        scipy_libs = {i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"
                      and "scipy" in os.path.basename(os.path.dirname(i["filepath"]))}
        if not scipy_libs:
            pytest.skip("scipy's BLAS is not a separate, recognisable library here")
        held = {c.filepath for c in _runtime._blas_controllers()}
        assert scipy_libs <= held
    finally:
        _blas.select()


def test_blas_choice_is_validated():
    from tensorgrad import _blas
    with pytest.raises(ValueError, match="auto, numpy, scipy"):
        _blas.select("mkl")


def _python(code, cwd, **env):
    """Run ``code`` in a fresh interpreter on this tensorgrad, with extra environment."""
    import os
    import subprocess
    import sys

    import tensorgrad as tg
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(tg.__file__)))
    for key in ("TENSORGRAD_BLAS", "OPENBLAS_THREAD_TIMEOUT"):
        if key not in env:
            full.pop(key, None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=cwd, env=full, check=False)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("value,expect,warns", [("scipy", "scipy's BLAS", False),
                                                ("bogus", "", True)])
def test_blas_environment_variable(value, expect, warns, tmp_path):
    r = _python("import tensorgrad as tg; print(tg._blas.provider())", tmp_path,
                TENSORGRAD_BLAS=value)
    assert r.stdout.startswith(expect or ("numpy's OpenBLAS", "scipy's BLAS"))
    assert ("TENSORGRAD_BLAS='bogus' is not one of auto, numpy, scipy" in r.stderr) == warns


def test_idle_openblas_workers_sleep_soon():
    import os

    import tensorgrad as tg
    if not tg._blas.provider().startswith("numpy's OpenBLAS"):
        pytest.skip("numpy's OpenBLAS is not the GEMM library here")
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        assert "yours" in tg._blas.idle_policy()
        return
    if "other threads" in tg._blas.idle_policy():
        pytest.skip("the test process had threads running when tensorgrad was imported")
    read_timeout = getattr(tg._blas._state["lib"], "openblas_thread_timeout", None)
    if read_timeout is not None:
        assert read_timeout() == tg._blas.THREAD_TIMEOUT
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ      # set only for the re-read
    assert f"2^{tg._blas.THREAD_TIMEOUT} cycles" in tg._runtime.config_text()


def test_idle_openblas_workers_use_no_cpu_after_a_gemm(tmp_path):
    # What the policy is for: right after a multi-threaded GEMM, OpenBLAS's workers would
    # otherwise spin for ~0.1 s (about 0.1 s of CPU time per worker while we sleep).
    # Contention can only lower the CPU time measured here, never raise it.
    code = """
import resource, time
import numpy as np
import tensorgrad as tg
if not (tg._blas.idle_policy() or "").startswith("2^12"):
    print("skip", tg._blas.idle_policy()); raise SystemExit
tg.set_num_threads(2)
a = np.ones((1500, 1500), np.float32)
spent = []
for _ in range(3):
    a @ a
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.1)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    spent.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
print(min(spent))
"""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    out = _python(code, tmp_path).stdout.split()
    if out[0] == "skip":
        pytest.skip(f"the idle policy is not in effect here: {' '.join(out[1:])}")
    assert float(out[0]) < 0.02


def test_user_openblas_thread_timeout_is_kept(tmp_path):
    r = _python("import tensorgrad as tg; print(tg._blas.idle_policy())", tmp_path,
                OPENBLAS_THREAD_TIMEOUT="20")
    assert r.stdout.strip() in ("None", "2^20 cycles (OPENBLAS_THREAD_TIMEOUT, yours)")


def test_idle_policy_is_left_alone_when_threads_run_at_import(tmp_path):
    # Another thread could be inside a BLAS call, so the pool must not be restarted.
    r = _python("import threading; ev = threading.Event(); "
                "th = threading.Thread(target=ev.wait); th.start(); "
                "import tensorgrad as tg; print(tg._blas.idle_policy()); ev.set()", tmp_path)
    out = r.stdout.strip()
    assert out == "None" or "other threads were running" in out
