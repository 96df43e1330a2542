"""The elementwise, activation and reduction kernels against plain numpy.

Every kernel is compared with numpy (or scipy.special) on random shapes, broadcasting
patterns (each fast path and the general strided path), non-contiguous and negative-stride
views, both float dtypes and sizes on both sides of the OpenMP threshold; results must also
be identical with 1 and 2 threads.
"""
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tensorgrad._kernels import activation as AK
from tensorgrad._kernels import elementwise as EK
from tensorgrad._kernels import reduce as RK
from tensorgrad._kernels import runtime

DTYPES = [np.float32, np.float64]
PAR_MIN = runtime.par_min()
HYP = settings(max_examples=30, deadline=None)

BINARY = {EK.ADD: np.add, EK.SUB: np.subtract, EK.MUL: np.multiply, EK.DIV: np.divide,
          EK.POW: np.power, EK.MAXIMUM: np.maximum, EK.MINIMUM: np.minimum}
UNARY = {EK.NEG: np.negative, EK.EXP: np.exp, EK.LOG: np.log, EK.SQRT: np.sqrt,
         EK.ABS: np.abs, EK.SQUARE: np.square, EK.RECIPROCAL: np.reciprocal}


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def close(actual, expected, dtype, **kw):
    np.testing.assert_allclose(actual, expected, equal_nan=True, **{**tol(dtype), **kw})


def values(rng, shape, dtype, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape).astype(dtype)


def make_view(rng, shape, dtype, kind, low=-2.0, high=2.0):
    """An array of `shape` with the given memory layout; same values semantics for numpy."""
    shape = tuple(shape)
    if kind == "c":
        return values(rng, shape, dtype, low, high)
    if kind == "f":                                 # transposed memory
        return values(rng, shape[::-1], dtype, low, high).T
    if kind == "neg":                               # negative strides on every axis
        a = values(rng, shape, dtype, low, high)
        return a[tuple(slice(None, None, -1) for _ in shape)] if shape else a
    if kind == "step":                              # gaps between elements
        a = values(rng, tuple(2 * s + 1 for s in shape), dtype, low, high)
        return a[tuple(slice(1, None, 2) for _ in shape)] if shape else a
    if kind == "bcast":                             # zero strides (np.broadcast_to / expand)
        small = tuple(1 if i % 2 == 0 else s for i, s in enumerate(shape))
        return np.broadcast_to(values(rng, small, dtype, low, high), shape)
    raise ValueError(kind)


LAYOUTS = ["c", "f", "neg", "step", "bcast"]


@pytest.fixture
def threads():
    """Run a block with a given thread count, restoring the previous count afterwards."""
    old = runtime.get_num_threads()
    yield runtime.set_num_threads
    runtime.set_num_threads(old)


# ----------------------------------------------------------------------------------------
# elementwise.binary
# ----------------------------------------------------------------------------------------

# (a shape, b shape) for each fast path and the general path, small and above PAR_MIN
PATTERNS = [
    ((7, 13), (7, 13)),            # same shape, flat
    ((600, 500), (600, 500)),
    ((7, 13), ()),                 # scalar (0-d)
    ((), (600, 500)),
    ((600, 500), (1, 1)),          # scalar of size 1 with dims
    ((7, 13), (13,)),              # row broadcast
    ((600, 500), (1, 500)),
    ((500,), (600, 500)),          # row broadcast, swapped
    ((7, 13), (7, 1)),             # column broadcast
    ((600, 500), (600, 1)),
    ((600, 1), (600, 500)),        # column broadcast, swapped
    ((5, 1, 9), (4, 1)),           # general N-d broadcast
    ((400, 1, 50), (1, 30, 50)),
    ((2, 3, 1, 5), (3, 4, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", PATTERNS)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_broadcast_patterns(op, shapes, dtype):
    rng = np.random.default_rng(1)
    low = 0.5 if op == EK.POW else -2.0             # keep powers real and finite
    a = values(rng, shapes[0], dtype, low)
    b = values(rng, shapes[1], dtype, low)
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype)
    EK.binary(op, a, b, out)
    close(out, BINARY[op](a, b), dtype)


@HYP
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                max_side=6),
       op=st.sampled_from(sorted(BINARY)), dtype=st.sampled_from(DTYPES),
       kinds=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)),
       seed=st.integers(0, 2**16))
def test_binary_random_shapes_and_strides(shapes, op, dtype, kinds, seed):
    rng = np.random.default_rng(seed)
    low = 0.5 if op == EK.POW else -2.0
    a = make_view(rng, shapes.input_shapes[0], dtype, kinds[0], low)
    b = make_view(rng, shapes.input_shapes[1], dtype, kinds[1], low)
    out = np.empty(shapes.result_shape, dtype)
    EK.binary(op, a, b, out)
    close(out, BINARY[op](a, b), dtype)


def test_binary_exact_for_basic_arithmetic():
    # IEEE add/sub/mul/div are correctly rounded, so float32 results equal numpy's bit for bit
    rng = np.random.default_rng(2)
    a = values(rng, (50, 70), np.float32)
    b = values(rng, (70,), np.float32)
    out = np.empty_like(a)
    for op in (EK.ADD, EK.SUB, EK.MUL, EK.DIV):
        EK.binary(op, a, b, out)
        np.testing.assert_array_equal(out, BINARY[op](a, b))


def test_binary_pow_special_values_follow_numpy():
    a = np.array([-2.0, -2.0, 0.0, 0.0, np.inf, -np.inf, np.nan, 1.0, 4.0])
    b = np.array([0.5, 3.0, -1.0, 0.0, -0.5, 3.0, 0.0, np.nan, 0.5])
    out = np.empty_like(a)
    EK.binary(EK.POW, a, b, out)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out, np.power(a, b))


def test_binary_maximum_minimum_propagate_nan():
    a = np.array([1.0, np.nan, 3.0, np.nan], np.float32)
    b = np.array([np.nan, 2.0, 1.0, np.nan], np.float32)
    out = np.empty_like(a)
    EK.binary(EK.MAXIMUM, a, b, out)
    np.testing.assert_array_equal(out, np.maximum(a, b))
    EK.binary(EK.MINIMUM, a, b, out)
    np.testing.assert_array_equal(out, np.minimum(a, b))


def test_binary_in_place_and_size_zero():
    rng = np.random.default_rng(3)
    a = values(rng, (600, 500), np.float64)
    b = values(rng, (500,), np.float64)
    expected = a * b
    EK.binary(EK.MUL, a, b, a)                     # out aliases an input
    np.testing.assert_array_equal(a, expected)
    z = np.empty((0, 3))
    EK.binary(EK.ADD, z, np.ones(3), z)             # nothing to do, no crash
    assert z.shape == (0, 3)


def test_binary_rejects_bad_arguments():
    a32 = np.ones((2, 3), np.float32)
    a64 = np.ones((2, 3), np.float64)
    with pytest.raises(TypeError, match="binary"):
        EK.binary(EK.ADD, a32, a64, np.empty((2, 3), np.float32))
    with pytest.raises(TypeError, match="binary"):
        EK.binary(EK.ADD, a32.astype(np.int32), a32, np.empty((2, 3), np.int32))
    with pytest.raises(ValueError, match="broadcast"):
        EK.binary(EK.ADD, a64, np.ones(4), np.empty((2, 3)))
    with pytest.raises(ValueError, match="broadcast"):
        EK.binary(EK.ADD, np.ones((3, 2, 3)), a64, np.empty((2, 3)))
    with pytest.raises(ValueError, match="read-only"):
        EK.binary(EK.ADD, a64, a64, np.broadcast_to(np.empty(3), (2, 3)))
    with pytest.raises(ValueError, match="op code"):
        EK.binary(99, a64, a64, np.empty((2, 3)))


# ----------------------------------------------------------------------------------------
# elementwise.binary_scalar / unary
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["c", "neg"])
@pytest.mark.parametrize("n", [100, 300_000])
@pytest.mark.parametrize("s", [2.0, -1.5, 0.5])
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_scalar(op, s, n, kind, dtype):
    rng = np.random.default_rng(4)
    a = make_view(rng, (n,), dtype, kind, 0.5 if op == EK.POW else -2.0)
    out = np.empty(a.shape, dtype)
    sd = dtype(s)                                   # numpy rounds the scalar to the dtype too
    EK.binary_scalar(op, a, s, out)
    close(out, BINARY[op](a, sd), dtype)
    EK.binary_scalar(op, a, s, out, reverse=True)
    with np.errstate(all="ignore"):
        close(out, BINARY[op](sd, a), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op, kind, dtype):
    rng = np.random.default_rng(5)
    a = make_view(rng, (60, 700), dtype, kind, -3.0, 3.0)   # 42k elements: parallel path
    out = np.empty(a.shape, dtype)
    EK.unary(op, a, out)
    with np.errstate(all="ignore"):                 # log/sqrt of negatives give nan, as numpy
        expected = UNARY[op](a)
    close(out, expected, dtype)


def test_unary_special_values():
    a = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan])
    out = np.empty_like(a)
    with np.errstate(all="ignore"):
        for op, f in UNARY.items():
            EK.unary(op, a, out)
            np.testing.assert_array_equal(out, f(a), err_msg=f"op {op}")


# ----------------------------------------------------------------------------------------
# elementwise helpers: accumulate, where, clamp, clamp_mask, copy
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("shape", [(3, 5), (200, 300)])
def test_accumulate(shape, kind, dtype):
    rng = np.random.default_rng(6)
    acc = values(rng, shape, dtype)
    g = make_view(rng, shape, dtype, kind)
    expected = acc + g
    EK.accumulate(acc, g)
    close(acc, expected, dtype)


@HYP
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                max_side=6),
       dtype=st.sampled_from(DTYPES), kind=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**16))
def test_muladd_is_bitwise_a_multiply_then_an_accumulate(shapes, dtype, kind, seed):
    """The fused kernel of planned replay (tensorgrad/_fuse.py): the product is rounded
    before the sum, so it must equal the two kernels it replaces, bit for bit."""
    rng = np.random.default_rng(seed)
    a = make_view(rng, shapes.input_shapes[0], dtype, kind)
    b = values(rng, shapes.input_shapes[1], dtype)
    c = make_view(rng, shapes.result_shape, dtype, kind)
    two = np.empty(shapes.result_shape, dtype)
    EK.binary(EK.MUL, a, b, two)
    EK.accumulate(two, c)
    one = np.empty(shapes.result_shape, dtype)
    EK.muladd(a, b, c, one)
    np.testing.assert_array_equal(one.view(f"u{one.itemsize}"), two.view(f"u{two.itemsize}"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_muladd_large_fast_path_and_bad_arguments(dtype):
    rng = np.random.default_rng(5)
    a, c = values(rng, (700, 500), dtype), values(rng, (700, 500), dtype)
    b = np.array(0.37, dtype)       # the scaled-gradient pattern: one broadcast value
    two = a * b
    two += c
    one = np.empty_like(a)
    EK.muladd(a, b, c, one)
    np.testing.assert_array_equal(one, two)
    with pytest.raises(TypeError, match="muladd: dtype mismatch"):
        EK.muladd(a, b, c.astype(np.float32 if dtype == np.float64 else np.float64), one)
    with pytest.raises(ValueError, match="muladd"):
        EK.muladd(a, b, c[:3], one)


@HYP
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                max_side=5),
       dtype=st.sampled_from(DTYPES), kind=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**16))
def test_where_random_broadcasts(shapes, dtype, kind, seed):
    rng = np.random.default_rng(seed)
    cond = rng.random(shapes.input_shapes[0]) < 0.5
    a = make_view(rng, shapes.input_shapes[1], dtype, kind)
    b = values(rng, shapes.input_shapes[2], dtype)
    out = np.empty(shapes.result_shape, dtype)
    EK.where(np.asarray(cond), a, b, out)
    np.testing.assert_array_equal(out, np.where(cond, a, b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_fast_paths_large(dtype):
    rng = np.random.default_rng(7)
    cond = rng.random((600, 500)) < 0.3
    a = values(rng, (600, 500), dtype)
    out = np.empty_like(a)
    for b in (values(rng, (600, 500), dtype), np.zeros((), dtype)):
        EK.where(cond, a, b, out)
        np.testing.assert_array_equal(out, np.where(cond, a, b))
        EK.where(cond, b, a, out)
        np.testing.assert_array_equal(out, np.where(cond, b, a))
    with pytest.raises(TypeError, match="bool"):
        EK.where(cond.astype(np.float64), a, a, out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["c", "neg", "bcast"])
@pytest.mark.parametrize("lo,hi", [(-0.5, 0.5), (-np.inf, 0.25), (0.0, np.inf), (1.0, 1.0)])
def test_clamp_and_clamp_mask(lo, hi, kind, dtype):
    rng = np.random.default_rng(8)
    a = make_view(rng, (600, 500), dtype, kind)
    a = np.where(rng.random(a.shape) < 0.01, np.nan, a).astype(dtype)   # NaN stays NaN
    g = values(rng, a.shape, dtype)
    out = np.empty(a.shape, dtype)
    EK.clamp(a, lo, hi, out)
    np.testing.assert_array_equal(out, np.clip(a, dtype(lo), dtype(hi)))
    EK.clamp_mask(a, lo, hi, g, out)
    np.testing.assert_array_equal(out, np.where((a >= lo) & (a <= hi), g, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("shape", [(), (1,), (4, 1, 6), (40, 30, 50)])
def test_copy(shape, kind, dtype):
    rng = np.random.default_rng(9)
    src = make_view(rng, shape, dtype, kind)
    out = np.empty(shape, dtype)
    EK.copy(src, out)
    np.testing.assert_array_equal(out, src)


# ----------------------------------------------------------------------------------------
# activation
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("shape", [(10, 10), (600, 500)])
def test_activations_forward_backward(shape, kind, dtype):
    rng = np.random.default_rng(10)
    x = make_view(rng, shape, dtype, kind, -4.0, 4.0)
    g = make_view(rng, shape, dtype, "neg")
    y = np.empty(shape, dtype)
    gx = np.empty(shape, dtype)

    AK.relu_forward(x, y)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    AK.relu_backward(g, y, gx)
    np.testing.assert_array_equal(gx, np.where(y > 0, g, 0))

    AK.sigmoid_forward(x, y)
    close(y, scipy.special.expit(x.astype(np.float64)), dtype)
    AK.sigmoid_backward(g, y, gx)
    close(gx, g * y * (1 - y), dtype)

    AK.tanh_forward(x, y)
    close(y, np.tanh(x.astype(np.float64)), dtype)
    AK.tanh_backward(g, y, gx)
    close(gx, g * (1 - y * y), dtype)


def test_relu_mission_example_and_kink():
    # MISSION.md: relu on [1, -2, 3, -1] with upstream [4, -1, 5, 9] gives [4, 0, 5, 0]
    x = np.array([1.0, -2.0, 3.0, -1.0])
    y = np.empty_like(x)
    gx = np.empty_like(x)
    AK.relu_forward(x, y)
    AK.relu_backward(np.array([4.0, -1.0, 5.0, 9.0]), y, gx)
    np.testing.assert_array_equal(gx, [4.0, 0.0, 5.0, 0.0])
    # at the kink x == 0 the output is 0, so the gradient is 0; relu(NaN) is NaN, grad 0
    x = np.array([0.0, -0.0, np.nan], np.float32)
    y = np.empty_like(x)
    gx = np.empty_like(x)
    AK.relu_forward(x, y)
    np.testing.assert_array_equal(y, [0.0, 0.0, np.nan])
    AK.relu_backward(np.ones(3, np.float32), y, gx)
    np.testing.assert_array_equal(gx, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_finite_at_extremes(dtype):
    x = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0], dtype)
    y = np.empty_like(x)
    with np.errstate(all="raise"):                  # no overflow anywhere
        AK.sigmoid_forward(x, y)
    assert np.all(np.isfinite(y))
    assert y[0] == 0.0 and y[-1] == 1.0 and y[3] == 0.5
    close(y, scipy.special.expit(x.astype(np.float64)), dtype)
    # MISSION.md neuron: sigmoid(1.0) = 0.7311, local gradient (1 - s) * s = 0.1966
    s = np.empty(1)
    AK.sigmoid_forward(np.array([1.0]), s)
    gs = np.empty(1)
    AK.sigmoid_backward(np.ones(1), s, gs)
    assert abs(s[0] - 0.7311) < 1e-4 and abs(gs[0] - 0.1966) < 1e-4


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 7), (64, 4096), (1, 50_000)])
@pytest.mark.parametrize("bias_kind", ["c", "step"])
def test_bias_add_and_bias_relu(shape, bias_kind, dtype):
    rng = np.random.default_rng(11)
    z = values(rng, shape, dtype)
    bias = make_view(rng, (shape[1],), dtype, bias_kind)
    out = z.copy()
    AK.bias_add(out, bias)
    np.testing.assert_array_equal(out, z + bias)
    out = z.copy()
    AK.bias_relu(out, bias)
    np.testing.assert_array_equal(out, np.maximum(z + bias, 0))


# ----------------------------------------------------------------------------------------
# reduce
# ----------------------------------------------------------------------------------------

# [A, B, C] shapes: C == 1 rows (incl. one row long enough to be split into blocks),
# C > 1 column tiles (incl. few tiles with a large B, which splits B), and tiny ones
SHAPES3 = [(1, 1, 1), (4, 5, 1), (3, 7, 2), (500, 100, 1), (1, 100_000, 1),
           (2, 70_000, 1), (1, 50_000, 3), (2, 3000, 300), (7, 60, 530), (40, 1, 9),
           (2, 20, 2500), (1, 3, 4500)]


def sum_tol(x3, dtype):
    # reference in float64; float64 error bound relative to the sum of magnitudes
    mag = np.abs(x3.astype(np.float64)).sum(axis=1)
    return (1e-5, 1e-6 + 1e-7 * mag) if dtype == np.float32 else (1e-12, 1e-13 * mag)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES3)
def test_sum_mid(shape, dtype):
    rng = np.random.default_rng(12)
    x = values(rng, shape, dtype)
    out = np.empty((shape[0], shape[2]), dtype)
    RK.sum_mid(x, out)
    rtol, atol = sum_tol(x, dtype)
    expected = x.astype(np.float64).sum(axis=1)
    assert np.all(np.abs(out - expected) <= atol + rtol * np.abs(expected))
    RK.sum_mid(x, out, 1.0 / shape[1])              # mean
    expected /= shape[1]
    assert np.all(np.abs(out - expected) <= atol / shape[1] + rtol * np.abs(expected))


def test_sum_mid_float32_accumulates_in_double():
    # 2^24 + many ones: a float32 accumulator would get stuck at 16777216
    x = np.ones((1, 100_001, 1), np.float32)
    x[0, 0, 0] = 2.0**24
    out = np.empty((1, 1), np.float32)
    RK.sum_mid(x, out)
    assert out[0, 0] == np.float32(2.0**24 + 100_000)
    assert RK.sum_all(x) == 2.0**24 + 100_000


def test_sum_mid_empty_axis_and_out_shape():
    x = np.empty((3, 0, 2))
    out = np.full((3, 2), 7.0)
    RK.sum_mid(x, out)
    np.testing.assert_array_equal(out, 0.0)
    x = np.arange(24.0).reshape(2, 3, 4)
    out = np.empty((2, 1, 4))                       # keepdims-shaped out is fine
    RK.sum_mid(x, out)
    np.testing.assert_array_equal(out, x.sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="sum_mid"):
        RK.sum_mid(x, np.empty((2, 3)))
    with pytest.raises(ValueError, match="C-contiguous"):
        RK.sum_mid(x.transpose(2, 1, 0), np.empty((4, 2)))
    with pytest.raises(TypeError, match="sum_mid"):
        RK.sum_mid(x, np.empty((2, 4), np.float32))


@HYP
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=30),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_sum_all(shape, dtype, seed):
    x = values(np.random.default_rng(seed), shape, dtype)
    s = RK.sum_all(x)
    assert isinstance(s, float)
    ref = float(np.sum(x, dtype=np.float64))
    assert abs(s - ref) <= 1e-12 * (np.abs(x).sum() + 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 5, 127, 129, 4099, 32768 * 3 + 17, 400_001])
def test_sum_of_squares_is_bitwise_the_square_kernel_then_the_sum(n, dtype, threads):
    """sum_all_into(squares=True) replaces a square kernel + sum in a plan: same bits."""
    x = values(np.random.default_rng(n), (n,), dtype, -3.0, 3.0)
    for k in (1, 2):
        threads(k)
        sq = np.empty_like(x)
        EK.unary(EK.SQUARE, x, sq)
        two, one = np.empty((), dtype), np.empty((), dtype)
        RK.sum_all_into(sq, two, 0.5)
        RK.sum_all_into(x, one, 0.5, squares=True)
        assert one.tobytes() == two.tobytes()
    assert abs(float(one) - 0.5 * float(np.sum(x.astype(np.float64) ** 2))) <= \
        1e-6 * float(np.sum(x.astype(np.float64) ** 2)) + 1e-30


def test_sum_all_large_is_accurate():
    x = values(np.random.default_rng(13), (1_000_003,), np.float64)
    assert abs(RK.sum_all(x) - np.sum(x)) <= 1e-13 * np.abs(x).sum()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES3)
def test_max_min_mid(shape, dtype):
    rng = np.random.default_rng(14)
    # few distinct values: plenty of ties, which must go to the first index
    x = rng.integers(-3, 4, size=shape).astype(dtype)
    val = np.empty((shape[0], shape[2]), dtype)
    idx = np.empty((shape[0], shape[2]), np.int64)
    RK.max_mid(x, val, idx)
    np.testing.assert_array_equal(val, x.max(axis=1))
    np.testing.assert_array_equal(idx, x.argmax(axis=1))
    RK.min_mid(x, val, idx)
    np.testing.assert_array_equal(val, x.min(axis=1))
    np.testing.assert_array_equal(idx, x.argmin(axis=1))


@pytest.mark.parametrize("c", [1, 3])
def test_max_min_nan_and_ties(c):
    rows = np.array([[1.0, 5.0, 5.0, 2.0],
                     [np.nan, 1.0, 9.0, np.nan],
                     [1.0, 2.0, np.nan, 7.0],
                     [-np.inf, -np.inf, -np.inf, -np.inf]])
    x = np.ascontiguousarray(np.repeat(rows[:, :, None], c, axis=2))
    val = np.empty((4, c))
    idx = np.empty((4, c), np.int64)
    RK.max_mid(x, val, idx)
    np.testing.assert_array_equal(val[:, 0], [5.0, np.nan, np.nan, -np.inf])
    np.testing.assert_array_equal(idx[:, 0], [1, 0, 2, 0])   # first tie, first NaN
    RK.min_mid(x, val, idx)
    np.testing.assert_array_equal(val[:, 0], [1.0, np.nan, np.nan, -np.inf])
    np.testing.assert_array_equal(idx[:, 0], [0, 0, 2, 0])
    np.testing.assert_array_equal(idx, idx[:, :1].repeat(c, axis=1))
    with pytest.raises(ValueError, match="empty"):
        RK.max_mid(np.empty((2, 0, 1)), np.empty((2, 1)), np.empty((2, 1), np.int64))
    with pytest.raises(TypeError, match="int64"):
        RK.max_mid(x, val, np.empty((4, c), np.int32))


def softmax_ref(x, axis):
    x = x.astype(np.float64)
    return scipy.special.softmax(x, axis=axis), scipy.special.log_softmax(x, axis=axis)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES3)
def test_logsumexp_softmax_log_softmax(shape, dtype):
    rng = np.random.default_rng(15)
    x = values(rng, shape, dtype, -30.0, 30.0) + dtype(500.0)   # big offset: needs the max
    lse = np.empty((shape[0], shape[2]), dtype)
    RK.logsumexp_mid(x, lse)
    close(lse, scipy.special.logsumexp(x.astype(np.float64), axis=1), dtype)
    sm, lsm = softmax_ref(x, 1)
    y = np.empty(shape, dtype)
    RK.softmax_mid(x, y)
    close(y, sm, dtype)
    RK.log_softmax_mid(x, y)
    close(y, lsm, dtype, atol=1e-4 if dtype == np.float32 else 1e-10)


def test_logsumexp_edge_cases():
    x = np.array([[-np.inf, -np.inf, -np.inf],
                  [-np.inf, 0.0, -np.inf],
                  [1.0, np.inf, 2.0],
                  [1.0, np.nan, 2.0],
                  [1000.0, 1000.0, -1000.0]])
    for c in (1, 2):
        x3 = np.ascontiguousarray(np.repeat(x[:, :, None], c, axis=2))
        out = np.empty((5, c))
        RK.logsumexp_mid(x3, out)
        np.testing.assert_allclose(out[:, 0], [-np.inf, 0.0, np.inf, np.nan,
                                               1000.0 + np.log(2.0)])
        np.testing.assert_array_equal(out, out[:, :1].repeat(c, axis=1))
    out = np.empty((2, 1))
    RK.logsumexp_mid(np.empty((2, 0, 1)), out)      # empty slice: log(0)
    np.testing.assert_array_equal(out, -np.inf)
    y = np.empty((1, 3, 1))
    RK.softmax_mid(np.array([[[-1000.0], [0.0], [1000.0]]]), y)   # stable: no overflow
    np.testing.assert_array_equal(y.ravel(), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES3)
def test_softmax_backward(shape, dtype):
    rng = np.random.default_rng(16)
    x = values(rng, shape, dtype)
    g = values(rng, shape, dtype)
    y = np.empty(shape, dtype)
    gx = np.empty(shape, dtype)
    g64 = g.astype(np.float64)

    RK.softmax_mid(x, y)
    RK.softmax_backward_mid(g, y, gx)
    y64 = y.astype(np.float64)
    close(gx, y64 * (g64 - (g64 * y64).sum(axis=1, keepdims=True)), dtype,
          atol=1e-5 if dtype == np.float32 else 1e-12)

    RK.log_softmax_mid(x, y)
    RK.log_softmax_backward_mid(g, y, gx)
    y64 = y.astype(np.float64)
    close(gx, g64 - np.exp(y64) * g64.sum(axis=1, keepdims=True), dtype,
          atol=1e-4 if dtype == np.float32 else 1e-11)


def test_softmax_backward_matches_finite_differences():
    # d/dx of sum(w * softmax(x)) along B, by central differences in float64
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 5, 3))
    w = rng.standard_normal((2, 5, 3))
    y = np.empty_like(x)
    gx = np.empty_like(x)
    RK.softmax_mid(x, y)
    RK.softmax_backward_mid(w, y, gx)
    num = np.empty_like(x)
    for i in np.ndindex(x.shape):
        f = []
        for step in (1e-6, -1e-6):
            xp = x.copy()
            xp[i] += step
            RK.softmax_mid(xp, y)
            f.append((w * y).sum())
        num[i] = (f[0] - f[1]) / 2e-6
    np.testing.assert_allclose(gx, num, atol=1e-6)


# ----------------------------------------------------------------------------------------
# threads: identical answers with 1 and 2 threads
# ----------------------------------------------------------------------------------------

def run_all_kernels(seed):
    rng = np.random.default_rng(seed)
    a = values(rng, (600, 500), np.float32)
    b = values(rng, (500,), np.float32)
    t = make_view(rng, (600, 500), np.float32, "f")
    x3 = values(rng, (3, 20_000, 1), np.float64)
    c3 = values(rng, (2, 3000, 70), np.float32)
    res = {}
    for name, f in [("binary", lambda o: EK.binary(EK.MUL, a, b, o)),
                    ("strided", lambda o: EK.binary(EK.SUB, t, a, o)),
                    ("unary", lambda o: EK.unary(EK.EXP, t, o)),
                    ("relu", lambda o: AK.relu_forward(t, o)),
                    ("sigmoid", lambda o: AK.sigmoid_forward(a, o))]:
        res[name] = np.empty_like(a)
        f(res[name])
    for name, x in [("rows", x3), ("cols", c3)]:
        A, _, C = x.shape
        res["sum_" + name] = np.empty((A, C), x.dtype)
        RK.sum_mid(x, res["sum_" + name])
        res["max_" + name] = np.empty((A, C), x.dtype)
        res["arg_" + name] = np.empty((A, C), np.int64)
        RK.max_mid(x, res["max_" + name], res["arg_" + name])
        res["lse_" + name] = np.empty((A, C), x.dtype)
        RK.logsumexp_mid(x, res["lse_" + name])
        res["sm_" + name] = np.empty_like(x)
        RK.softmax_mid(x, res["sm_" + name])
    res["sum_all"] = np.array(RK.sum_all(c3))
    return res


@pytest.mark.skipif(not runtime.openmp_enabled(), reason="built without OpenMP")
def test_one_and_two_threads_give_identical_results(threads):
    threads(1)
    one = run_all_kernels(18)
    threads(2)
    two = run_all_kernels(18)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], err_msg=k)


def test_op_codes_are_distinct():
    assert len(set(BINARY)) == 7 and len(set(UNARY)) == 7
    assert PAR_MIN > 100                             # the 100-element cases above are serial
