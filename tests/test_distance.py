"""tg.cdist and the distance kernels (_kernels/distance.pyx).

Values against scipy.spatial.distance.cdist (random data and nearly identical rows, where the
||p||² + ||q||² - 2 p·q expansion cancels catastrophically in float32), independence from
thread count and tile size, gradients (gradcheck/gradgradcheck on both inputs, the value 0
at zero distance), memory (no N×M×D anywhere), errors.
"""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist as scipy_cdist

import tensorgrad as tg
from tensorgrad._kernels import distance as DK
from tensorgrad._runtime import blas_single_thread

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
DTYPES = [np.float32, np.float64]


def reference(x1, x2, squared=False):
    d = scipy_cdist(x1.astype(np.float64), x2.astype(np.float64))
    return d * d if squared else d


def assert_rel_close(actual, expected, dtype, atol=0.0):
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=atol)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), m=st.integers(1, 40), d=st.integers(1, 70),
       squared=st.booleans(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31 - 1))
def test_cdist_matches_scipy_random(n, m, d, squared, dtype, seed):
    rng = np.random.default_rng(seed)
    x1 = (rng.standard_normal((n, d)) * 3 + 1).astype(dtype)
    x2 = (rng.standard_normal((m, d)) * 3 + 1).astype(dtype)
    out = tg.cdist(tg.from_numpy(x1), tg.from_numpy(x2), squared=squared)
    assert out.shape == (n, m) and out.dtype == dtype
    assert_rel_close(out.numpy(), reference(x1, x2, squared), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("noise", [1e-2, 1e-4, 1e-6])
def test_cdist_nearly_identical_rows(dtype, noise):
    """scikit-learn#9354: pixel-like data (large norms) whose rows differ by tiny amounts."""
    rng = np.random.default_rng(3)
    x1 = (rng.random((30, 3072)) * 255).astype(dtype)
    x2 = (x1.astype(np.float64) + rng.standard_normal(x1.shape) * noise * 255).astype(dtype)
    x2[:5] = x1[:5]                                   # exact duplicates: distance exactly 0
    got = tg.cdist(x1, x2).numpy()
    ref = reference(x1, x2)
    assert_rel_close(got, ref, dtype)
    assert np.all(np.diag(got)[:5] == 0)
    got_sq = tg.cdist(x1, x2, squared=True).numpy()
    np.testing.assert_allclose(got_sq, ref * ref, rtol=2 * RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cdist_zero_columns_and_empty(dtype):
    x1, x2 = np.empty((3, 0), dtype), np.empty((4, 0), dtype)
    np.testing.assert_array_equal(tg.cdist(x1, x2).numpy(), np.zeros((3, 4)))
    assert tg.cdist(np.empty((0, 5), dtype), np.ones((4, 5), dtype)).shape == (0, 4)


def test_cdist_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((7, 12))
    b = rng.standard_normal((9, 36))[:, ::3]          # strided columns: [9, 12]
    at = tg.from_numpy(np.ascontiguousarray(a.T)).T   # a transposed view of [12, 7]
    assert not at.is_contiguous()
    np.testing.assert_allclose(tg.cdist(at, tg.from_numpy(b)).numpy(), reference(a, b),
                               rtol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cdist_kernel_independent_of_tiles_and_threads(dtype):
    rng = np.random.default_rng(5)
    x1 = rng.standard_normal((301, 40)).astype(dtype)
    x2 = rng.standard_normal((517, 40)).astype(dtype)
    x2[:20] = x1[:20] + 1e-4                          # some pairs take the exact path

    def run(tr, tc):
        out = np.full((301, 517), np.nan, dtype)
        with blas_single_thread():
            DK.cdist(x1, x2, out, False, tr, tc)
        return out

    base = run(256, 1024)
    ref = reference(x1, x2)
    assert_rel_close(base, ref, dtype)
    for tr, tc in [(1, 1), (7, 33), (64, 128), (301, 517), (1000, 1000)]:
        np.testing.assert_allclose(run(tr, tc), base, rtol=10 * np.finfo(dtype).eps, atol=0)
    tg.set_num_threads(1)
    one = run(64, 128)
    tg.set_num_threads(2)
    two = run(64, 128)
    np.testing.assert_array_equal(one, two)           # same tile grid -> bit-identical


@pytest.mark.parametrize("squared", [False, True])
def test_cdist_gradcheck_both_inputs(squared):
    rng = np.random.default_rng(6)
    x1 = tg.tensor(rng.standard_normal((5, 3)), dtype=tg.float64, requires_grad=True)
    x2 = tg.tensor(rng.standard_normal((4, 3)), dtype=tg.float64, requires_grad=True)
    assert tg.testing.gradcheck(lambda a, b: tg.cdist(a, b, squared=squared), (x1, x2))
    assert tg.testing.gradgradcheck(lambda a, b: tg.cdist(a, b, squared=squared), (x1, x2))


def test_cdist_gradcheck_one_input_and_float32_input():
    rng = np.random.default_rng(7)
    x1 = tg.tensor(rng.standard_normal((6, 4)), dtype=tg.float32, requires_grad=True)
    x2 = tg.tensor(rng.standard_normal((3, 4)), dtype=tg.float32)
    assert tg.testing.gradcheck(lambda a, b: tg.cdist(a, b), (x1, x2))
    d = tg.cdist(x1, x2)
    d.sum().backward()
    assert x1.grad.dtype == tg.float32 and x1.grad.shape == (6, 4) and x2.grad is None


def test_cdist_gradient_at_zero_distance_is_zero_not_nan():
    """pytorch#37154: the subgradient 0 is used where two points coincide."""
    x1 = tg.tensor([[1.0, 2.0]], dtype=tg.float64, requires_grad=True)
    x2 = tg.tensor([[1.0, 2.0], [4.0, 6.0]], dtype=tg.float64, requires_grad=True)
    d = tg.cdist(x1, x2)
    np.testing.assert_allclose(d.numpy(), [[0.0, 5.0]])
    d.sum().backward()
    # only the pair at distance 5 contributes: d/dx1 = (x1 - x2[1]) / 5
    np.testing.assert_allclose(x1.grad.numpy(), [[-0.6, -0.8]])
    np.testing.assert_allclose(x2.grad.numpy(), [[0.0, 0.0], [0.6, 0.8]])
    # second order through the kink stays finite too
    x1.grad = None
    (g,) = tg.grad(tg.cdist(x1, x2).sum(), [x1], create_graph=True)
    (gg,) = tg.grad((g * g).sum(), [x1])
    assert np.all(np.isfinite(gg.numpy()))


def test_cdist_squared_gradient_formula():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    g = rng.standard_normal((4, 5))
    x1 = tg.tensor(a, dtype=tg.float64, requires_grad=True)
    x2 = tg.tensor(b, dtype=tg.float64, requires_grad=True)
    tg.cdist(x1, x2, squared=True).backward(tg.tensor(g, dtype=tg.float64))
    diff = a[:, None, :] - b[None, :, :]             # tiny here: the explicit reference
    np.testing.assert_allclose(x1.grad.numpy(), 2 * np.einsum("ij,ijd->id", g, diff))
    np.testing.assert_allclose(x2.grad.numpy(), -2 * np.einsum("ij,ijd->jd", g, diff))


def test_cdist_forward_memory_is_the_output():
    rng = np.random.default_rng(9)
    x1 = rng.standard_normal((400, 64)).astype(np.float32)
    x2 = rng.standard_normal((3000, 64)).astype(np.float32)
    tg.cdist(x1, x2)                                   # warm-up
    tracemalloc.start()
    out = tg.cdist(x1, x2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    norms = (400 + 3000) * 8
    assert peak < out.numpy().nbytes + norms + 256 * 1024, peak


def test_cdist_backward_memory_has_no_nmd_tensor():
    n, m, d = 200, 300, 400                            # N×M×D float64 would be 192 MB
    rng = np.random.default_rng(10)
    x1 = tg.tensor(rng.standard_normal((n, d)), dtype=tg.float64, requires_grad=True)
    x2 = tg.tensor(rng.standard_normal((m, d)), dtype=tg.float64, requires_grad=True)
    loss = tg.cdist(x1, x2).sum()
    tracemalloc.start()
    loss.backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nm_bytes = n * m * 8
    assert peak < 6 * nm_bytes + 4 * (n + m) * d * 8, peak
    assert peak < n * m * d * 8 / 20


def test_cdist_graph_replay_uses_new_leaf_values():
    x1 = tg.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=tg.float64, requires_grad=True)
    x2 = tg.tensor([[3.0, 4.0]], dtype=tg.float64)
    d = tg.cdist(x1, x2)
    graph = tg.Graph(d)
    buf = d.numpy()
    with tg.no_grad():
        x1.copy_(tg.tensor([[3.0, 0.0], [0.0, 0.0]], dtype=tg.float64))
    out = graph.forward()
    np.testing.assert_allclose(out.numpy(), [[4.0], [5.0]])
    assert np.shares_memory(out.numpy(), buf)


def test_cdist_errors_name_op_and_shapes():
    f32, f64 = tg.float32, tg.float64
    with pytest.raises(ValueError, match=r"cdist.*\(3,\).*\(4, 3\)"):
        tg.cdist(tg.ones(3), tg.ones(4, 3))
    with pytest.raises(ValueError, match=r"cdist.*\(2, 3\).*\(4, 5\)"):
        tg.cdist(tg.ones(2, 3), tg.ones(4, 5))
    with pytest.raises(TypeError, match=r"cdist.*float32.*float64.*\(2, 3\).*\(4, 3\)"):
        tg.cdist(tg.ones(2, 3, dtype=f32), tg.ones(4, 3, dtype=f64))
    with pytest.raises(TypeError, match=r"cdist.*int64"):
        tg.cdist(tg.tensor([[1, 2]]), tg.tensor([[3, 4]]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_knn_kernel_ties_and_segments(dtype):
    """Small-integer data: many exact ties. The order is (distance, index), whatever the
    tiles, segments or thread count."""
    rng = np.random.default_rng(11)
    xq = rng.integers(0, 3, (37, 5)).astype(dtype)
    xt = rng.integers(0, 3, (211, 5)).astype(dtype)
    k = 9
    d2 = ((xq[:, None, :].astype(np.int64) - xt[None, :, :].astype(np.int64)) ** 2).sum(-1)
    order = np.array([np.lexsort((np.arange(211), row)) for row in d2])[:, :k]
    exp_d = np.sqrt(np.take_along_axis(d2, order, 1))
    for tr, tc, seg, threads in [(256, 1024, 1, 2), (1, 1, 2, 2), (5, 17, 3, 2),
                                 (37, 211, 1, 1), (8, 50, 4, 1), (2, 7, 1, 1)]:
        tg.set_num_threads(threads)
        dist = np.empty((37, k), dtype)
        idx = np.empty((37, k), np.int64)
        hd = np.full((seg, 37, k), np.inf)
        hi = np.full((seg, 37, k), np.iinfo(np.int64).max)
        qn = np.empty(37)
        DK.row_sqnorms(xq, qn)
        with blas_single_thread():
            for start in range(0, 211, 60):     # the training rows in chunks, as streamed
                DK.knn_chunk(xq, xt[start:start + 60], start, 0, 1e-3, qn, hd, hi, tr, tc)
        DK.knn_finish(hd, hi, 1, dist, idx)
        np.testing.assert_array_equal(idx, order, err_msg=f"tiles {tr}x{tc}, seg {seg}")
        np.testing.assert_allclose(dist, exp_d, rtol=1e-6)


def test_blas_single_thread_restores_the_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    ctl = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not ctl.lib_controllers:
        pytest.skip("no BLAS visible to threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = [c.get_num_threads() for c in ctl.lib_controllers]
        with blas_single_thread():
            assert all(c.get_num_threads() == 1 for c in ctl.lib_controllers)
            with blas_single_thread():                 # nested use keeps the limit
                pass
            assert all(c.get_num_threads() == 1 for c in ctl.lib_controllers)
        assert [c.get_num_threads() for c in ctl.lib_controllers] == before


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("squared", [False, True])
def test_infinite_coordinates_give_infinite_distances_like_torch(dtype, squared):
    torch = pytest.importorskip("torch")
    inf = np.inf
    x1 = np.array([[0.0, 1.0], [inf, 0.0], [1.0, 1.0], [-inf, 2.0]], dtype)
    x2 = np.array([[0.0, 0.0], [2.0, inf], [inf, 3.0]], dtype)
    got = tg.cdist(tg.tensor(x1), tg.tensor(x2), squared=squared).numpy()
    ref = torch.cdist(torch.tensor(x1, dtype=torch.float64),
                      torch.tensor(x2, dtype=torch.float64)).numpy()
    ref = ref ** 2 if squared else ref
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))   # only inf - inf is NaN
    np.testing.assert_allclose(got, ref, rtol=RTOL[dtype])


def test_gradient_with_infinite_distances_is_finite_where_torch_is():
    torch = pytest.importorskip("torch")
    x1 = np.array([[0.0, 1.0], [np.inf, 0.0], [1.0, 1.0]])
    x2 = np.array([[0.0, 0.0], [2.0, np.inf], [3.0, 3.0]])
    a, b = tg.tensor(x1, requires_grad=True), tg.tensor(x2, requires_grad=True)
    ta, tb = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    tg.cdist(a, b).sum().backward()
    torch.cdist(ta, tb).sum().backward()
    for got, ref in [(a.grad.numpy(), ta.grad.numpy()), (b.grad.numpy(), tb.grad.numpy())]:
        finite = np.isfinite(ref)
        assert finite.any()
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12)
