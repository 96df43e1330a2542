"""Forward values of every op against numpy, through each kernel dispatch path.

Paths exercised from the op level, in float32 and float64 with per-dtype tolerances: same
shape, a scalar operand (Python number and one-element tensor), row and column broadcasts,
general N-d broadcasts, non-contiguous operands (transposes, step and negative-step slices)
and sizes on both sides of the OpenMP threshold (``par_min`` elements), with 1 and N threads.
Also: dtype promotion, integer tensors and comparison masks (no gradient), and error
messages that name the op and the shapes involved.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad._kernels import runtime

PAR_MIN = runtime.par_min()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def check(t, ref, dtype):
    """t (a Tensor) has ref's values, shape and the expected dtype."""
    assert isinstance(t, tg.Tensor)
    assert t.dtype == dtype, (t.dtype, dtype)
    assert t.shape == np.shape(ref)
    np.testing.assert_allclose(t.numpy(), ref, **TOL[dtype])


def arr(rng, shape, dtype, kind="any"):
    if kind == "pos":
        a = rng.uniform(0.5, 2.0, shape)
    elif kind == "away":
        a = rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    else:
        a = rng.standard_normal(shape)
    return np.asarray(a, dtype)


def test_threshold_is_reported_and_keeps_tiny_arrays_serial(capsys):
    assert 1024 <= PAR_MIN <= 1 << 22
    tg.show_config()
    assert f"loops above {PAR_MIN} elements" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# binary elementwise: every dispatch path
# ----------------------------------------------------------------------------------------------
BINARY = {
    "add": (tg.add, np.add, "any"),
    "sub": (tg.sub, np.subtract, "any"),
    "mul": (tg.mul, np.multiply, "any"),
    "div": (tg.div, np.divide, "away"),
    "pow": (tg.pow, np.power, "any"),
    "maximum": (tg.maximum, np.maximum, "any"),
    "minimum": (tg.minimum, np.minimum, "any"),
}

N_SMALL = PAR_MIN - 1
N_BIG = PAR_MIN + 1

# (name, shape of a, shape of b, how to derive the operands from contiguous arrays)
PATHS = [
    ("same-small", (N_SMALL,), (N_SMALL,), None),
    ("same-big", (3, N_BIG), (3, N_BIG), None),
    ("same-exact-threshold", (PAR_MIN,), (PAR_MIN,), None),
    ("0d-0d", (), (), None),
    ("tensor-1elem-big", (300, 200), (1,), None),
    ("row-small", (7, 13), (13,), None),
    ("row-big", (300, 200), (1, 200), None),
    ("col-small", (7, 13), (7, 1), None),
    ("col-big", (300, 200), (300, 1), None),
    ("outer", (300, 1), (1, 200), None),
    ("general-3d", (4, 1, 6), (5, 1), None),
    ("general-big", (40, 1, 30), (35, 30), None),
    ("leading-ones", (1, 1, 5), (2, 3, 5), None),
    ("a-transposed", (200, 300), (300, 200), "aT"),
    ("both-transposed", (9, 7), (9, 7), "bothT"),
    ("a-step-slice", (300, 400), (300, 200), "astep"),
    ("b-negative-step", (50, 700), (50, 700), "bneg"),
    ("transposed-bcast-row", (200, 300), (200,), "aT"),
]


def _operands(rng, sa, sb, how, dtype, kind):
    a = arr(rng, sa, dtype)
    b = arr(rng, sb, dtype, kind)
    if how == "aT":
        a = a.T
    elif how == "bothT":
        a, b = a.T, b.T
    elif how == "astep":
        a = a[:, ::2]
    elif how == "bneg":
        b = b[::-1, ::-1]
    return a, b


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("path", PATHS, ids=[p[0] for p in PATHS])
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_paths_match_numpy(op, path, dtype):
    fn, ref_fn, kind = BINARY[op]
    _, sa, sb, how = path
    rng = np.random.default_rng(len(op) * 31 + len(path[0]))
    a, b = _operands(rng, sa, sb, how, dtype, kind)
    if op == "pow":
        a = np.asarray(np.abs(a) + 0.5, dtype)      # real powers need a positive base
    ta, tb = tg.from_numpy(a), tg.from_numpy(b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    check(fn(ta, tb), ref_fn(a64, b64), dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        check(fn(tb, ta), ref_fn(b64, a64), dtype)     # negative ** fraction: nan in both


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [5, N_SMALL, N_BIG])
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_with_python_scalar_both_sides(op, n, dtype):
    fn, ref_fn, _ = BINARY[op]
    rng = np.random.default_rng(n)
    a = arr(rng, (n,), dtype, "pos")
    s = 1.75
    check(fn(tg.from_numpy(a), s), ref_fn(a.astype(np.float64), s), dtype)
    check(fn(s, tg.from_numpy(a)), ref_fn(s, a.astype(np.float64)), dtype)
    # through a strided view too (the scalar path on a non-contiguous operand)
    v = a[::3]
    check(fn(tg.from_numpy(a)[::3], s), ref_fn(v.astype(np.float64), s), dtype)


def test_binary_one_vs_many_threads_same_answer():
    rng = np.random.default_rng(5)
    a = tg.from_numpy(arr(rng, (400, 300), np.float32))
    b = tg.from_numpy(arr(rng, (300,), np.float32))
    results = []
    for n in (1, 2):
        tg.set_num_threads(n)
        results.append([(a * b).numpy().copy(), (a.T + 1.0).numpy().copy(),
                        tg.exp(a).numpy().copy(), a.sum(0).numpy().copy(),
                        tg.softmax(a, 1).numpy().copy(), tg.relu(a).numpy().copy()])
    for r1, r2 in zip(*results):
        np.testing.assert_array_equal(r1, r2)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), op=st.sampled_from(list(BINARY)))
def test_binary_random_broadcast_shapes(data, dtype, op):
    """Random broadcast-compatible shapes and strides (hypothesis)."""
    fn, ref_fn, kind = BINARY[op]
    nd = data.draw(st.integers(0, 4))
    full = data.draw(st.lists(st.integers(1, 6), min_size=nd, max_size=nd))
    sa = tuple(s if data.draw(st.booleans()) else 1 for s in full)
    sb = tuple(s if data.draw(st.booleans()) else 1 for s in full)
    sb = sb[data.draw(st.integers(0, nd)):]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    a = arr(rng, sa, dtype, "pos")
    b = arr(rng, sb, dtype, kind)
    if data.draw(st.booleans()) and a.ndim >= 2:
        a = np.ascontiguousarray(np.swapaxes(a, 0, 1)).swapaxes(0, 1)   # same shape, F-ish
    if data.draw(st.booleans()) and b.ndim >= 1:
        b = b[::-1]
    check(fn(tg.from_numpy(a), tg.from_numpy(b)),
          ref_fn(a.astype(np.float64), b.astype(np.float64)), dtype)


def test_binary_does_not_modify_inputs_and_allocates_output():
    a = tg.ones(3, 4)
    b = tg.full((4,), 2.0)
    c = a + b
    np.testing.assert_array_equal(a.numpy(), 1.0)
    np.testing.assert_array_equal(b.numpy(), 2.0)
    assert not np.shares_memory(c.numpy(), a.numpy())
    assert c.is_contiguous()


# ----------------------------------------------------------------------------------------------
# unary elementwise and activations
# ----------------------------------------------------------------------------------------------
def _np_sigmoid(x):
    with np.errstate(over="ignore"):        # exp(1000) = inf gives exactly 0, as it should
        return 1.0 / (1.0 + np.exp(-x))


UNARY = {
    "neg": (tg.neg, np.negative, "any"),
    "exp": (tg.exp, np.exp, "any"),
    "log": (tg.log, np.log, "pos"),
    "sqrt": (tg.sqrt, np.sqrt, "pos"),
    "abs": (tg.abs, np.abs, "any"),
    "relu": (tg.relu, lambda x: np.maximum(x, 0.0), "any"),
    "sigmoid": (tg.sigmoid, _np_sigmoid, "any"),
    "tanh": (tg.tanh, np.tanh, "any"),
    "clamp": (lambda x: tg.clamp(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), "any"),
    "square": (tg.square, np.square, "any"),
    "reciprocal": (tg.reciprocal, np.reciprocal, "away"),
}
LAYOUTS = {
    "0d": ((), lambda a: a),
    "small": ((5, 7), lambda a: a),
    "below": ((N_SMALL,), lambda a: a),
    "above": ((3, N_BIG), lambda a: a),
    "transposed": ((300, 200), lambda a: a.T),
    "step": ((400, 300), lambda a: a[::2, 1::3]),
    "negative": ((300, 200), lambda a: a[::-1]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("op", list(UNARY))
def test_unary_paths_match_numpy(op, layout, dtype):
    fn, ref_fn, kind = UNARY[op]
    shape, view = LAYOUTS[layout]
    a = view(arr(np.random.default_rng(len(op)), shape, dtype, kind))
    check(fn(tg.from_numpy(a)), ref_fn(a.astype(np.float64)), dtype)


def _softmax_vjp(x, g):
    y = np.exp(x - _lse(x, -1, True))
    return y * (g - (g * y).sum(-1, keepdims=True))


BACKWARD = {
    "relu": (tg.relu, lambda x, g: g * (x > 0)),
    "sigmoid": (tg.sigmoid, lambda x, g: g * _np_sigmoid(x) * (1 - _np_sigmoid(x))),
    "tanh": (tg.tanh, lambda x, g: g * (1 - np.tanh(x) ** 2)),
    "clamp": (lambda x: tg.clamp(x, -0.5, 0.7), lambda x, g: g * ((x >= -0.5) & (x <= 0.7))),
    "abs": (tg.abs, lambda x, g: g * np.sign(x)),
    "exp": (tg.exp, lambda x, g: g * np.exp(x)),
    "softmax": (lambda x: tg.softmax(x, -1), lambda x, g: _softmax_vjp(x, g)),
    "log_softmax": (lambda x: tg.log_softmax(x, -1),
                    lambda x, g: g - np.exp(x - _lse(x, -1, True)) * g.sum(-1, keepdims=True)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(5, 7), (1, N_SMALL), (3, N_BIG)], ids=["small", "below",
                                                                          "above"])
@pytest.mark.parametrize("op", list(BACKWARD))
def test_backward_kernels_match_numpy(op, shape, dtype):
    """The fused backward kernels (mask from the saved output, never a Jacobian) on both
    sides of the threshold, with a contiguous and a transposed upstream gradient."""
    fn, ref = BACKWARD[op]
    rng = np.random.default_rng(len(op))
    x = tg.tensor(arr(rng, shape, dtype), requires_grad=True)
    g = arr(rng, shape, dtype)
    for upstream in (g, np.ascontiguousarray(g.T).T):
        x.grad = None
        fn(x).backward(tg.from_numpy(upstream))
        assert x.grad.dtype == dtype
        np.testing.assert_allclose(x.grad.numpy(), ref(x.numpy().astype(np.float64),
                                                       upstream.astype(np.float64)),
                                   **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (300, 1100), (3, 4, 5)])
def test_l2_penalty_gradient_is_exact(shape, dtype):
    # (w·w).sum()·c: Square's backward sees the expanded gradient of a sum and takes the
    # one-pass path; scaling by 2 is exact, so the result must equal 2·c·w bit for bit.
    w0 = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    w = tg.from_numpy(w0.copy()).requires_grad_()
    ((w * w).sum() * 0.75).backward()
    np.testing.assert_array_equal(w.grad.numpy(), (w0 * dtype(1.5)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_penalty_double_backward_keeps_the_path_through_g(dtype):
    # L = S², S = Σ w²: dL/dw = 4 S w, and H·v = 4 S v + 8 w (w·v). The second term comes
    # only through Square's incoming gradient g = 2S, so the one-pass shortcut must not
    # be taken while recording.
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(6).astype(dtype)
    v0 = rng.standard_normal(6).astype(dtype)
    w = tg.from_numpy(w0.copy()).requires_grad_()
    s = (w * w).sum()
    (g,) = tg.grad(s * s, [w], create_graph=True)
    (hv,) = tg.grad((g * tg.from_numpy(v0)).sum(), [w])
    S = float((w0.astype(np.float64) ** 2).sum())
    want = 4 * S * v0 + 8 * w0 * float(w0 @ v0)
    np.testing.assert_allclose(hv.numpy(), want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_l2_penalty_gradient_does_not_overflow_early():
    # 2g overflows float32 but g·(2x) does not: the shortcut must not produce inf.
    w = tg.from_numpy(np.array([1e-10, -2e-10], np.float32)).requires_grad_()
    ((w * w).sum() * 3e38).backward()
    np.testing.assert_allclose(w.grad.numpy(), [6e28, -12e28], rtol=1e-6)


def test_sigmoid_and_exp_extremes():
    x = tg.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    s = tg.sigmoid(x).numpy()
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, _np_sigmoid(np.array([-1000.0, -50, 0, 50, 1000])), atol=1e-30)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    np.testing.assert_array_equal(tg.tanh(x).numpy(), np.tanh(x.numpy()))
    assert np.isinf(tg.exp(tg.tensor([1000.0])).item())


def test_where_and_clamp_values():
    rng = np.random.default_rng(2)
    for dtype in DTYPES:
        x = arr(rng, (300, 200), dtype)
        y = arr(rng, (200,), dtype)
        c = x > 0.3
        check(tg.where(tg.from_numpy(c), tg.from_numpy(x), tg.from_numpy(y)), np.where(c, x, y),
              dtype)
        check(tg.where(tg.from_numpy(c), tg.from_numpy(x), 0.0), np.where(c, x, 0.0), dtype)
        check(tg.where(tg.from_numpy(c)[:, :1], 1.5, tg.from_numpy(y)),
              np.where(c[:, :1], 1.5, y), dtype)
        check(tg.clamp(tg.from_numpy(x), min=0.0), np.clip(x, 0.0, None), dtype)
        check(tg.clamp(tg.from_numpy(x).T, max=0.1), np.clip(x.T, None, 0.1), dtype)
        lo = tg.from_numpy(y)
        check(tg.clamp(tg.from_numpy(x), min=lo), np.maximum(x, y), dtype)


# ----------------------------------------------------------------------------------------------
# reductions, softmax
# ----------------------------------------------------------------------------------------------
RED_SHAPES = [(), (7,), (5, 6), (2, 3, 4), (3, N_BIG), (N_SMALL,), (60, 70, 9)]


def _dims_for(shape):
    nd = len(shape)
    out = [None]
    out += list(range(nd))
    if nd >= 2:
        out.append(-1)
        out.append((0, nd - 1))
    if nd >= 3:
        out.append((0, 1))
    return out


def _cases():
    for shape in RED_SHAPES:
        for dim in _dims_for(shape):
            for keep in (False, True):
                yield pytest.param(shape, dim, keep, id=f"{shape}-{dim}-{int(keep)}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,dim,keep", list(_cases()))
def test_sum_mean_match_numpy(shape, dim, keep, dtype):
    a = np.asarray(arr(np.random.default_rng(len(shape)), shape, dtype) + 0.25, dtype)
    a64 = a.astype(np.float64)
    check(tg.sum(tg.from_numpy(a), dim, keepdim=keep), np.sum(a64, axis=dim, keepdims=keep),
          dtype)
    check(tg.mean(tg.from_numpy(a), dim, keepdim=keep), np.mean(a64, axis=dim, keepdims=keep),
          dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_sum_of_noncontiguous_and_large_accumulates_in_double(dtype):
    a = np.full((4, 300000), 0.1, dtype)
    ref = np.sum(a.astype(np.float64), axis=1)
    check(tg.sum(tg.from_numpy(a), 1), ref, dtype)
    check(tg.sum(tg.from_numpy(a).T, 0), ref, dtype)
    x = arr(np.random.default_rng(0), (300, 400), dtype)
    check(tg.sum(tg.from_numpy(x)[::2, ::3], 0), x[::2, ::3].astype(np.float64).sum(0), dtype)
    # float32 sum of 1.2M values of 0.1: naive float32 accumulation would be off by ~1e-3
    assert abs(tg.sum(tg.from_numpy(a)).item() - 120000.0) < 1e-2


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(7,), (5, 6), (2, 3, 4), (3, N_BIG), (60, 70, 9)])
def test_max_min_values_and_indices(shape, dtype):
    a = arr(np.random.default_rng(len(shape)), shape, dtype)
    t = tg.from_numpy(a)
    assert tg.max(t).item() == a.max() and tg.min(t).item() == a.min()
    assert t.max().dtype == dtype
    for dim in range(len(shape)):
        for keep in (False, True):
            v, i = tg.max(t, dim, keepdim=keep)
            np.testing.assert_array_equal(v.numpy(), a.max(axis=dim, keepdims=keep))
            np.testing.assert_array_equal(i.numpy(), a.argmax(axis=dim, keepdims=keep))
            v, i = tg.min(t.T, dim, keepdim=keep)
            np.testing.assert_array_equal(v.numpy(), a.T.min(axis=dim, keepdims=keep))
            np.testing.assert_array_equal(i.numpy(), a.T.argmin(axis=dim, keepdims=keep))
            assert i.dtype == np.int64


def test_max_ties_pick_first_index():
    a = np.array([[1.0, 5.0, 5.0, 2.0], [3.0, 3.0, 3.0, 3.0]], np.float32)
    v, i = tg.max(tg.from_numpy(a), 1)
    np.testing.assert_array_equal(v.numpy(), [5.0, 3.0])
    np.testing.assert_array_equal(i.numpy(), [1, 0])
    _, i = tg.min(tg.from_numpy(a), 0)
    np.testing.assert_array_equal(i.numpy(), [0, 1, 1, 0])     # column 1: 5 vs 3; 2: 5 vs 3
    _, i = tg.min(tg.from_numpy(a[::-1]), 1)
    np.testing.assert_array_equal(i.numpy(), [0, 0])
    _, i = tg.max(tg.from_numpy(a).T, 0)
    np.testing.assert_array_equal(i.numpy(), [1, 0])


def _lse(a, axis, keep):
    m = np.max(a, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return r if keep else np.squeeze(r, axis=axis)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(7,), (5, 6), (2, 3, 4), (3, N_BIG), (60, 70, 9)])
def test_logsumexp_softmax_log_softmax(shape, dtype):
    a = arr(np.random.default_rng(len(shape)), shape, dtype) * np.asarray(3.0, dtype)
    a64 = a.astype(np.float64)
    t = tg.from_numpy(a)
    for dim in range(-1, len(shape)):
        lse = _lse(a64, dim, True)
        check(tg.logsumexp(t, dim), _lse(a64, dim, False), dtype)
        check(tg.logsumexp(t, dim, keepdim=True), lse, dtype)
        check(tg.softmax(t, dim), np.exp(a64 - lse), dtype)
        check(tg.log_softmax(t, dim), a64 - lse, dtype)
    if len(shape) == 2:
        check(tg.softmax(t.T, 0), np.exp(a64.T - _lse(a64.T, 0, True)), dtype)
        check(tg.log_softmax(t[:, ::2], 1),
              a64[:, ::2] - _lse(a64[:, ::2], 1, True), dtype)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_reductions_random_shapes_dims_and_strides(data, dtype):
    """sum/mean/max/min/logsumexp/softmax against numpy on random shapes, axis sets and
    layouts (transposed or step-sliced), via hypothesis."""
    shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    a = arr(rng, shape, dtype)
    layout = data.draw(st.sampled_from(["c", "T", "step"]))
    if layout == "T":
        a = a.T
    elif layout == "step":
        a = arr(rng, (2 * shape[0],) + shape[1:], dtype)[::2]
    nd = a.ndim
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, nd - 1), min_size=1))))
    keep = data.draw(st.booleans())
    t = tg.from_numpy(a)
    a64 = a.astype(np.float64)
    check(tg.sum(t, dims, keepdim=keep), a64.sum(axis=dims, keepdims=keep), dtype)
    check(tg.mean(t, dims, keepdim=keep), a64.mean(axis=dims, keepdims=keep), dtype)
    d = dims[0]
    v, i = tg.max(t, d, keepdim=keep)
    np.testing.assert_array_equal(v.numpy(), a.max(axis=d, keepdims=keep))
    np.testing.assert_array_equal(i.numpy(), a.argmax(axis=d, keepdims=keep))
    v, i = tg.min(t, d, keepdim=keep)
    np.testing.assert_array_equal(i.numpy(), a.argmin(axis=d, keepdims=keep))
    check(tg.logsumexp(t, d, keepdim=keep), _lse(a64, d, keep), dtype)
    check(tg.softmax(t, d), np.exp(a64 - _lse(a64, d, True)), dtype)


def test_softmax_is_stable_for_huge_scores():
    x = tg.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    s = tg.softmax(x, 1).numpy()
    ls = tg.log_softmax(x, 1).numpy()
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ls))
    np.testing.assert_allclose(s.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(s[1], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(tg.logsumexp(x, 1).numpy(),
                               [1001.0 + np.log1p(np.exp(-1) + np.exp(-2)), -1000 + np.log(3)],
                               rtol=1e-6)


def test_reductions_on_0d_tensors():
    x = tg.tensor(2.5, dtype=tg.float64)
    assert tg.sum(x).item() == 2.5 and tg.sum(x, 0).item() == 2.5
    assert tg.mean(x, -1).item() == 2.5
    v, i = tg.max(x, 0)
    assert v.item() == 2.5 and i.item() == 0 and v.shape == ()
    assert tg.logsumexp(x, 0).item() == pytest.approx(2.5)
    assert tg.softmax(x, 0).item() == 1.0
    assert tg.log_softmax(x, 0).item() == 0.0


def test_sum_over_empty_dim_list_reduces_everything_like_pytorch():
    x = tg.ones(2, 3)
    assert tg.sum(x, ()).item() == 6.0
    assert tg.mean(x, []).item() == 1.0


# ----------------------------------------------------------------------------------------------
# matmul
# ----------------------------------------------------------------------------------------------
MATMUL = [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)),
          ((2, 3, 4), (2, 4, 5)), ((1, 3, 4), (6, 4, 2)), ((2, 1, 3, 4), (5, 4, 2)),
          ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (4,)), ((4,), (3, 4, 2)),
          ((64, 300), (300, 128)), ((1, 1), (1, 1)), ((3, 0), (0, 2))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("sa,sb", MATMUL, ids=[f"{a}@{b}" for a, b in MATMUL])
def test_matmul_matches_numpy(sa, sb, dtype):
    rng = np.random.default_rng(len(sa) + 10 * len(sb))
    a, b = arr(rng, sa, dtype), arr(rng, sb, dtype)
    tol = {np.float32: {"rtol": 1e-4, "atol": 1e-4}, np.float64: {"rtol": 1e-11,
                                                                  "atol": 1e-11}}[dtype]
    res = tg.from_numpy(a) @ tg.from_numpy(b)
    assert res.dtype == dtype and res.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(res.numpy(), np.matmul(a.astype(np.float64), b), **tol)
    if a.ndim >= 2 and b.ndim >= 2:   # transposed / strided operands, same product
        at = tg.from_numpy(np.ascontiguousarray(np.swapaxes(a, -1, -2))).mT
        bs = tg.from_numpy(np.repeat(b, 2, axis=-1))[..., ::2]
        np.testing.assert_allclose(tg.matmul(at, bs).numpy(), np.matmul(a, b).astype(np.float64),
                                   **tol)


@pytest.mark.parametrize("da,db", [(np.int64, np.int64), (np.int32, np.int32),
                                   (np.int32, np.int64), (np.uint8, np.int16),
                                   (np.bool_, np.int32)])
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4,)), ((2, 3, 4), (4,)),
                                   ((1, 3, 4), (6, 4, 2))])
def test_integer_matmul_is_exact_and_stays_integer(sa, sb, da, db):
    rng = np.random.default_rng(3)
    a = rng.integers(-3, 4, sa).astype(da)
    b = rng.integers(0, 9, sb).astype(db)
    res = tg.from_numpy(a) @ tg.from_numpy(b)
    expected = np.matmul(a, b)
    assert res.dtype == expected.dtype.type and res.shape == expected.shape
    np.testing.assert_array_equal(res.numpy(), expected)
    assert not res.requires_grad
    big = tg.full((2, 2), 2**40) @ tg.full((2, 2), 3)     # exact beyond float precision
    assert big.tolist() == [[6 * 2**40] * 2] * 2 and big.dtype == tg.int64


def test_integer_matmul_errors_name_op_and_shapes():
    ints = tg.ones(2, 2, 3, dtype=tg.int64)
    _raises(ValueError, lambda: ints @ tg.ones(2, 3, dtype=tg.int64), "matmul:", "inner")
    _raises(ValueError, lambda: ints @ tg.ones(3, 3, 2, dtype=tg.int64), "matmul:",
            "(2, 2, 3)", "(3, 3, 2)")


# ----------------------------------------------------------------------------------------------
# shape ops: values
# ----------------------------------------------------------------------------------------------
def test_shape_ops_values():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = tg.from_numpy(a)
    np.testing.assert_array_equal(tg.transpose(t, 0, 2).numpy(), a.transpose(2, 1, 0))
    np.testing.assert_array_equal(t.permute(1, 2, 0).numpy(), a.transpose(1, 2, 0))
    np.testing.assert_array_equal(tg.unsqueeze(t, 1).numpy(), a[:, None])
    np.testing.assert_array_equal(tg.squeeze(tg.unsqueeze(t, -1)).numpy(), a)
    np.testing.assert_array_equal(t[:, :1].expand(2, 3, 4).numpy(),
                                  np.broadcast_to(a[:, :1], (2, 3, 4)))
    np.testing.assert_array_equal(tg.cat([t, t[:, :1]], 1).numpy(),
                                  np.concatenate([a, a[:, :1]], 1))
    np.testing.assert_array_equal(tg.stack([t, t], 3).numpy(), np.stack([a, a], 3))
    np.testing.assert_array_equal(t.T.numpy(), a.T)
    idx = np.array([[[0, 3, 3, 1]] * 3] * 2)
    np.testing.assert_array_equal(tg.gather(t, 2, tg.from_numpy(idx)).numpy(),
                                  np.take_along_axis(a, idx, 2))


def test_indexing_values():
    a = np.arange(20.0).reshape(4, 5)
    t = tg.from_numpy(a)
    keys = [1, -1, (slice(1, 3),), (slice(None, None, 2), slice(1, None, 2)),
            (slice(None, None, -1),), (Ellipsis, 2), (None, 1), [0, 0, 3],
            (slice(None), [4, 4, 0]), (np.array([0, 2]), np.array([1, 1])), a > 7.0]
    for k in keys:
        np.testing.assert_array_equal(t[k].numpy(), a[k])
    np.testing.assert_array_equal(t[tg.tensor([3, 1])].numpy(), a[[3, 1]])
    np.testing.assert_array_equal(t[t > 7.0].numpy(), a[a > 7.0])


# ----------------------------------------------------------------------------------------------
# dtype promotion, integer tensors, comparisons
# ----------------------------------------------------------------------------------------------
def test_float32_with_float64_gives_float64():
    a = tg.ones(2, 3)
    b = tg.ones(3, dtype=tg.float64)
    for r in (a + b, b - a, a * b, b / a, tg.maximum(a, b), a ** b,
              a @ tg.ones(3, 2, dtype=tg.float64), tg.where(a > 0, a, b),
              tg.cat([tg.cast(a, tg.float64), b.expand(2, 3)])):
        assert r.dtype == tg.float64


def test_mixed_dtype_gradients_keep_each_input_dtype():
    a = tg.ones(2, 3, requires_grad=True)
    b = tg.ones(3, dtype=tg.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == tg.float32 and b.grad.dtype == tg.float64


def test_int_tensor_with_float_gives_float32():
    i = tg.tensor([1, 2, 3])
    assert i.dtype == tg.int64
    for r in (i + 1.5, 1.5 * i, i / 2, i - tg.ones(3), tg.ones(3) * i, tg.exp(i), tg.relu(i),
              tg.sigmoid(i), tg.mean(i), tg.where(i > 1, i, 0.5), i @ tg.ones(3, 2)):
        assert r.dtype == tg.float32, r
    np.testing.assert_allclose((i / 2).numpy(), [0.5, 1.0, 1.5])
    assert (i + tg.ones(3, dtype=tg.float64)).dtype == tg.float64


def test_int_arithmetic_stays_integer():
    i = tg.tensor([1, 2, 3])
    for r in (i + 1, 2 * i, i - i, -i, i ** 2, abs(-i), tg.sum(i), tg.max(i),
              tg.clamp(i, 0, 2)):
        assert r.dtype == tg.int64
    np.testing.assert_array_equal((i * 2 + 1).numpy(), [3, 5, 7])
    s = tg.tensor(5)                      # 0-d: results are 0-d arrays, never numpy scalars
    for r in (s + 1, s * s, -s, abs(s), tg.clamp(s, 0, 3), tg.maximum(s, 2), s > 2, ~(s > 2),
              tg.sign(s), s.sum(), s.max()):
        assert isinstance(r.numpy(), np.ndarray) and r.shape == ()


def test_python_scalars_keep_the_tensor_dtype():
    for dt in DTYPES:
        t = tg.ones(3, dtype=dt)
        for r in (t + 1, 1 + t, t * 2.5, 2.5 / t, t - np.float64(3.0), t ** 2, 2.0 ** t,
                  tg.maximum(t, 0.5), tg.minimum(7, t), tg.clamp(t, 0.0, 1.0),
                  tg.where(t > 0, t, 0.0)):
            assert r.dtype == dt, r
    assert (tg.tensor(2.0) + 1e-3).dtype == tg.float32


def test_integer_tensors_never_require_grad():
    i = tg.tensor([1, 2])
    with pytest.raises(TypeError, match="float"):
        i.requires_grad_()
    with pytest.raises(TypeError):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError):
        tg.zeros(2, dtype=tg.int64, requires_grad=True)
    with pytest.raises(TypeError):
        tg.arange(3, requires_grad=True)
    with pytest.raises(TypeError):
        i.requires_grad = True
    assert not i.requires_grad
    b = tg.tensor([True, False])
    with pytest.raises(TypeError):
        b.requires_grad_()


def test_comparisons_give_bool_masks_without_grad():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = tg.tensor([2.0, 2.0, 2.0], requires_grad=True)
    cases = {"gt": (x > y, [False, False, True]), "ge": (x >= y, [False, True, True]),
             "lt": (x < y, [True, False, False]), "le": (x <= y, [True, True, False]),
             "eq": (x == y, [False, True, False]), "ne": (x != y, [True, False, True]),
             "gt-scalar": (x > 1.5, [False, True, True]), "rev": (2.5 < x, [False, False, True]),
             "bcast": (tg.gt(x, tg.tensor([[1.5], [5.0]])), [[False, True, True],
                                                            [False, False, False]])}
    for name, (m, expected) in cases.items():
        assert m.dtype == tg.bool_, name
        assert not m.requires_grad and m.is_leaf, name
        np.testing.assert_array_equal(m.numpy(), expected, err_msg=name)
    np.testing.assert_array_equal((~(x > y)).numpy(), [True, True, False])
    np.testing.assert_array_equal((~(tg.tensor(1.0) > 0)).numpy(), False)
    # a mask used as a multiplier is a constant: only x gets a gradient
    (x * (x > 1.5)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0])


def test_sign_is_a_constant_and_works_on_0d():
    assert tg.sign(tg.tensor(-3.0)).item() == -1.0
    s = tg.sign(tg.tensor([-2.0, 0.0, 5.0], requires_grad=True))
    np.testing.assert_array_equal(s.numpy(), [-1.0, 0.0, 1.0])
    assert not s.requires_grad


# ----------------------------------------------------------------------------------------------
# errors: name the op and both shapes
# ----------------------------------------------------------------------------------------------
def _raises(exc, fn, *fragments):
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for f in fragments:
        assert f in msg, (f, msg)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_broadcast_mismatch_names_op_and_shapes(op):
    a, b = tg.ones(2, 3), tg.ones(4)
    _raises(ValueError, lambda: getattr(tg, op)(a, b), f"{op}:", "(2, 3)", "(4,)")
    _raises(ValueError, lambda: getattr(tg, op)(a, tg.ones(3, 2, dtype=tg.float64)), f"{op}:",
            "(2, 3)", "(3, 2)")


def test_operator_and_integer_broadcast_errors_name_the_op():
    _raises(ValueError, lambda: tg.ones(2, 3) + tg.ones(2), "add:", "(2, 3)", "(2,)")
    _raises(ValueError, lambda: tg.ones(2, 3) * tg.ones(3, 3, 3), "mul:", "(2, 3)", "(3, 3, 3)")
    _raises(ValueError, lambda: tg.tensor([1, 2]) + tg.tensor([1, 2, 3]), "add:", "(2,)",
            "(3,)")
    _raises(ValueError, lambda: tg.where(tg.ones(5) > 0, tg.ones(2, 3), 0.0), "where:",
            "(5,)", "(2, 3)")
    _raises(ValueError, lambda: tg.ones(2, 3) > tg.ones(2), "gt:", "(2, 3)", "(2,)")


def test_matmul_errors_name_op_and_shapes():
    _raises(ValueError, lambda: tg.ones(2, 3) @ tg.ones(2, 3), "matmul:", "(2, 3)",
            "inner dimensions 3 and 2")
    _raises(ValueError, lambda: tg.matmul(tg.ones(4), tg.ones(3)), "matmul:", "(4,)", "(3,)")
    _raises(ValueError, lambda: tg.ones(2, 2, 3) @ tg.ones(3, 3, 2), "matmul:", "(2, 2, 3)",
            "(3, 3, 2)")
    _raises(ValueError, lambda: tg.matmul(tg.tensor(1.0), tg.ones(2)), "matmul:", "()", "(2,)")


def test_view_raises_on_noncontiguous_and_reshape_copies_only_then():
    a = tg.arange(12.0).reshape(3, 4)
    _raises(RuntimeError, lambda: a.T.view(12), "view:", "(4, 3)", "reshape")
    _raises(RuntimeError, lambda: a[:, :2].view(6), "view:", "(3, 2)")
    # a step slice whose elements are evenly spaced CAN be viewed (as in PyTorch)
    assert np.shares_memory(a[:, ::2].view(6).numpy(), a.numpy())
    _raises(ValueError, lambda: a.view(5, 2), "view:", "(5, 2)", "(3, 4)")
    _raises(ValueError, lambda: a.reshape(7), "reshape:", "(7,)", "(3, 4)")
    base = a.numpy()
    assert np.shares_memory(a.view(4, 3).numpy(), base)
    assert np.shares_memory(a.reshape(2, 6).numpy(), base)
    assert np.shares_memory(a.T.reshape(4, 3, 1).numpy(), base)   # only adds a dim: no copy
    assert np.shares_memory(a[1:].reshape(8).numpy(), base)      # contiguous rows: no copy
    copied = a.T.reshape(12)
    assert not np.shares_memory(copied.numpy(), base)
    np.testing.assert_array_equal(copied.numpy(), base.T.reshape(12))
    assert not np.shares_memory(a[:, :2].reshape(6).numpy(), base)
    np.testing.assert_array_equal(a[:, :2].reshape(6).numpy(), base[:, :2].reshape(6))


class _NoShapeSetting(np.ndarray):
    """An ndarray that fails on ``arr.shape = ...`` (deprecated in numpy 2.5)."""

    @property
    def shape(self):
        return np.ndarray.shape.__get__(self)

    @shape.setter
    def shape(self, value):
        raise AssertionError(f"tensorgrad set .shape = {value} on an ndarray (deprecated in "
                             f"numpy 2.5); use reshape(..., copy=False)")


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.1.0",
                    reason="numpy < 2.1 has no reshape(copy=False): .shape = is the way there")
def test_view_and_reshape_never_set_the_shape_attribute():
    base = np.arange(24.0).reshape(4, 6)
    x = tg.from_numpy(base.view(_NoShapeSetting)).requires_grad_()
    v = x.view(6, 4)
    r = x[:, ::2].reshape(12)                    # a step slice: still viewable, no copy
    assert np.shares_memory(v.numpy(), base) and np.shares_memory(r.numpy(), base)
    _raises(RuntimeError, lambda: x.T.view(24), "view:", "(6, 4)", "reshape")
    assert not np.shares_memory(x.T.reshape(24).numpy(), base)
    (v.sum() + r.sum() + x.sum(1).sum()).backward()      # Sum.backward reshapes g
    np.testing.assert_array_equal(x.grad.numpy(), np.tile([3.0, 2.0], (4, 3)))


def test_cat_stack_errors():
    _raises(ValueError, lambda: tg.cat([tg.ones(2, 3), tg.ones(2, 4)], 0), "cat:", "(2, 3)",
            "(2, 4)")
    _raises(ValueError, lambda: tg.cat([tg.ones(2, 3), tg.ones(3)]), "cat:", "(2, 3)", "(3,)")
    _raises(TypeError, lambda: tg.cat([tg.ones(2), tg.ones(2, dtype=tg.int64)]), "cat:",
            "float32", "int64")
    _raises(ValueError, lambda: tg.cat([]), "cat:")
    _raises(ValueError, lambda: tg.stack([tg.ones(2, 3), tg.ones(3, 2)]), "stack:", "(2, 3)",
            "(3, 2)")


def test_gather_bad_index():
    x = tg.ones(2, 3)
    _raises(IndexError, lambda: tg.gather(x, 1, tg.tensor([[0, 3]])), "gather:", "size 3")
    _raises(IndexError, lambda: tg.gather(x, 1, tg.tensor([[-1]])), "gather:")
    _raises(TypeError, lambda: tg.gather(x, 1, tg.tensor([[0.0]])), "gather:", "integer")
    _raises(ValueError, lambda: tg.gather(x, 1, tg.tensor([0, 1])), "gather:", "(2,)",
            "(2, 3)")
    _raises(ValueError, lambda: tg.gather(x, 1, tg.tensor([[0], [1], [1]])), "gather:",
            "(3, 1)", "(2, 3)")
    # along ``dim`` itself the index may be longer than the input (PyTorch's rule)
    np.testing.assert_array_equal(tg.gather(x, 0, tg.tensor([[0], [1], [1]])).numpy(),
                                  [[1.0], [1.0], [1.0]])


def test_other_shape_errors():
    x = tg.ones(2, 3)
    _raises(ValueError, lambda: x.expand(3, 3), "expand:", "(2, 3)", "(3, 3)")
    _raises(IndexError, lambda: x[5], "index:", "(2, 3)")
    _raises(IndexError, lambda: tg.softmax(x, 2), "softmax:")
    _raises(IndexError, lambda: tg.sum(x, 3), "sum:")
    _raises(ValueError, lambda: tg.split(x, [1, 1], 1), "split:", "(2, 3)")
    _raises(ValueError, lambda: tg.permute(x, (0, 0)), "permute:")
    _raises(ValueError, lambda: x.add_(tg.ones(4)), "add_:", "(4,)", "(2, 3)")
    _raises(ValueError, lambda: tg.clamp(x), "clamp:")
    _raises(ValueError, lambda: tg.max(tg.ones(0, 3), 0), "max", "(0, 3)")
    _raises(IndexError, lambda: tg.logsumexp(x, (0, 2)), "logsumexp:", "2")


# ------------------------------------------------- defects found by the differential test
def test_narrow_wraps_a_negative_start_and_checks_the_range():
    x = tg.arange(5)
    assert tg.narrow(x, 0, -2, 2).tolist() == [3, 4]
    assert x.narrow(0, -5, 1).tolist() == [0]
    assert x.narrow(0, 5, 0).tolist() == []
    for start, length in [(6, 0), (3, 3), (-6, 1), (0, -1)]:
        _raises(IndexError, lambda s=start, n=length: x.narrow(0, s, n), "narrow:",
                f"start {start}", f"length {length}", "dim 0", "size 5")


def test_clamp_with_min_above_max_gives_max_and_no_gradient():
    x = tg.tensor([0.0, 1.5, 3.0], dtype=tg.float64, requires_grad=True)
    y = tg.clamp(x, 2.0, 1.0)
    assert y.tolist() == [1.0, 1.0, 1.0]        # torch: min(max(x, lo), hi)
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]   # torch: no x satisfies lo <= x <= hi
    assert np.isnan(tg.clamp(tg.tensor([np.nan]), 2.0, 1.0).item())


def test_flatten_rejects_start_dim_after_end_dim():
    _raises(ValueError, lambda: tg.zeros(2, 3, 4).flatten(2, 1), "flatten:", "start_dim 2",
            "end_dim 1")


@pytest.mark.parametrize("sa, sb", [((2, 0, 3), (2, 3, 4)), ((2, 2, 0), (2, 0, 4)),
                                    ((2, 3, 4), (2, 4, 0)), ((0, 3), (3, 4)), ((2, 0), (0, 4)),
                                    ((3, 2, 0), (0, 5))])
def test_matmul_and_bmm_with_an_empty_matrix_dim(sa, sb):
    a = tg.randn(*sa, dtype=tg.float64, requires_grad=True)
    b = tg.randn(*sb, dtype=tg.float64, requires_grad=True)
    y = tg.bmm(a, b) if len(sa) == len(sb) == 3 else tg.matmul(a, b)
    expected = np.matmul(a.detach().numpy(), b.detach().numpy())
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    y.sum().backward()
    ones = np.ones(expected.shape)
    np.testing.assert_allclose(a.grad.numpy(), np.matmul(ones, np.swapaxes(b.detach().numpy(),
                                                                           -1, -2)))
    gb = np.matmul(np.swapaxes(a.detach().numpy(), -1, -2), ones)
    np.testing.assert_allclose(b.grad.numpy(), gb.sum(0) if gb.ndim > len(sb) else gb)


def test_linear_with_zero_in_features_gives_zeros():
    from tensorgrad.nn import functional as F
    x = tg.randn(2, 3, 0, requires_grad=True)
    w = tg.randn(4, 0, requires_grad=True)
    y = F.linear(x, w)
    assert y.shape == (2, 3, 4) and not np.any(y.detach().numpy())
    y.sum().backward()
    assert x.grad.shape == (2, 3, 0) and w.grad.shape == (4, 0)


def test_flatten_and_chunk_of_zero_length_dims_match_torch():
    assert tg.zeros(0, 3).flatten().shape == (0,)
    assert tg.zeros(2, 0, 4).flatten(0, 1).shape == (0, 4)
    assert tg.zeros(2, 0, 4).flatten(1).shape == (2, 0)
    assert [c.shape for c in tg.zeros(0).chunk(3)] == [(0,), (0,), (0,)]
    assert [c.shape for c in tg.zeros(2, 0).chunk(2, 1)] == [(2, 0), (2, 0)]
    assert [c.shape for c in tg.zeros(0).chunk(1)] == [(0,)]


# ------------------------------------------------------------------------- added names
def test_max_min_with_dim_return_a_named_tuple():
    a = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]])
    x = tg.tensor(a)
    for fn, np_fn, np_arg in [(tg.max, np.max, np.argmax), (tg.min, np.min, np.argmin)]:
        r = fn(x, 1)
        assert type(r).__name__ == fn.__name__ and r._fields == ("values", "indices")
        assert r.values.tolist() == np_fn(a, 1).tolist()
        assert r.indices.tolist() == np_arg(a, 1).tolist()
        values, indices = getattr(x, fn.__name__)(dim=0, keepdim=True)
        assert values.shape == indices.shape == (1, 3)
        assert isinstance(fn(x), tg.Tensor) and fn(x).item() == np_fn(a)
        assert isinstance(fn(x, axis=1), tg.Tensor)          # numpy's spelling: values only
        ri = fn(tg.tensor([[3, 1], [0, 4]]), 0)               # integer tensors too
        assert ri.values.tolist() == np_fn([[3, 1], [0, 4]], 0).tolist()


@pytest.mark.parametrize("dim", [(0, 2), (2, 0), (1,), (-1, 0), (0, 1, 2), 1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp_over_a_tuple_of_dims(dim, keepdim):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3, 4)) * 30
    got = tg.logsumexp(tg.tensor(a), dim, keepdim)
    ref = torch.logsumexp(torch.tensor(a), dim, keepdim).numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-13)


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("dim, keepdim", [(1, False), ((0, 2), True), ((), False),
                                          (-1, True)])
def test_amax_amin_match_torch_with_ties(name, dim, keepdim):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(1).integers(0, 3, (3, 4, 2)).astype(np.float64)   # many ties
    x = tg.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y = getattr(tg, name)(x, dim, keepdim)
    ref = getattr(torch, name)(t, dim, keepdim)
    np.testing.assert_array_equal(y.detach().numpy(), ref.detach().numpy())
    w = np.random.default_rng(2).standard_normal(ref.shape)
    (y * tg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-14)
    assert getattr(x, name)(dim, keepdim).shape == y.shape
    assert getattr(tg, name)(tg.tensor([[1, 5], [3, 2]]), 0).tolist() == \
        getattr(np, name)([[1, 5], [3, 2]], 0).tolist()


def test_index_select_masked_fill_clip_values():
    torch = pytest.importorskip("torch")
    a = np.arange(12.0).reshape(3, 4)
    idx = [2, 0, 2]
    for d in (0, 1):
        np.testing.assert_array_equal(tg.index_select(tg.tensor(a), d, tg.tensor(idx)).numpy(),
                                      torch.index_select(torch.tensor(a), d,
                                                         torch.tensor(idx)).numpy())
    assert tg.tensor(5.0).index_select(0, [0]).shape == ()
    _raises(IndexError, lambda: tg.tensor(a).index_select(1, [4]), "index_select:", "4",
            "size 4")
    _raises(TypeError, lambda: tg.tensor(a).index_select(1, [0.5]), "index_select:")
    m = a % 3 == 0
    np.testing.assert_array_equal(tg.tensor(a).masked_fill(tg.tensor(m[0]), -1.0).numpy(),
                                  torch.tensor(a).masked_fill(torch.tensor(m[0]), -1).numpy())
    np.testing.assert_array_equal(tg.masked_fill(tg.tensor(a), tg.tensor(m), 7.0).numpy(),
                                  np.where(m, 7.0, a))
    _raises(ValueError, lambda: tg.tensor(a[0]).masked_fill(tg.tensor(m), 0.0), "masked_fill:",
            "(3, 4)", "(4,)")
    _raises(TypeError, lambda: tg.tensor(a).masked_fill(tg.tensor(a), 0.0), "masked_fill:")
    np.testing.assert_array_equal(tg.tensor(a).clip(2.0, 5.0).numpy(), np.clip(a, 2.0, 5.0))
    np.testing.assert_array_equal(tg.clip(tg.tensor(a), max=3.0).numpy(), np.clip(a, None, 3))


def test_tensor_methods_a_torch_user_reaches_for():
    a, b = tg.randn(2, 3, dtype=tg.float64), tg.randn(3, 4, dtype=tg.float64)
    np.testing.assert_allclose(a.mm(b).numpy(), a.numpy() @ b.numpy())
    a3, b3 = tg.randn(2, 2, 3), tg.randn(2, 3, 4)
    np.testing.assert_allclose(a3.bmm(b3).numpy(), a3.numpy() @ b3.numpy(), rtol=1e-5)
    u, v = tg.randn(5, dtype=tg.float64), tg.randn(5, dtype=tg.float64)
    assert u.dot(v).item() == pytest.approx(float(u.numpy() @ v.numpy()), rel=1e-13)
    assert tg.ones(3).expand_as(a).shape == (2, 3)
    assert tg.arange(6.0).view_as(a).shape == (2, 3)
    assert a.T.reshape_as(tg.zeros(6)).tolist() == a.numpy().T.reshape(6).tolist()


def test_cat_promotes_float32_with_float64():
    x32 = tg.ones(2, dtype=tg.float32, requires_grad=True)
    x64 = tg.ones(3, dtype=tg.float64, requires_grad=True)
    y = tg.cat([x32, x64])
    assert y.dtype == tg.float64 and y.shape == (5,)
    (y * tg.arange(5.0, dtype=tg.float64)).sum().backward()
    assert x32.grad.dtype == tg.float32 and x32.grad.tolist() == [0.0, 1.0]
    assert x64.grad.dtype == tg.float64 and x64.grad.tolist() == [2.0, 3.0, 4.0]
