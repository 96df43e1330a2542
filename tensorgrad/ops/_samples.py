"""Sample inputs for the op registry (``registry.py``): the ``Sample`` and ``BadCall`` records
and the generators that make them, shared by the ops of a family.

A generator ``gen(dtype, rng, big=False)`` yields ``Sample``s that cover broadcasting, size-0
and size-1 dims, 0-d tensors and transposed, strided and expanded inputs; domains such as
x > 0 are generator arguments (``positive_samples``). With ``big=True`` it yields inputs above
the kernels' parallel threshold, for the thread-invariance test. ``bad_calls`` builds an
entry's ``error_inputs``: calls that must raise with a message naming the op. The shape
ops' generators are in ``_shape_samples.py``.
"""
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from tensorgrad._kernels import runtime as _runtime
from tensorgrad._tensor import from_numpy
from tensorgrad.ops._references import ref_log_softmax


class Sample(NamedTuple):
    """One call of an op, ``op(*args, **kwargs)``; ``desc`` names it in test ids.

    ``grad=False`` excludes it from the gradient checks (inputs where the derivative does not
    exist, such as infinities)."""
    desc: str
    args: tuple
    kwargs: Mapping = MappingProxyType({})
    grad: bool = True


class BadCall(NamedTuple):
    """A call ``op(*args)`` that must raise ``error`` with a message starting ``"NAME: "``."""
    desc: str
    args: tuple
    error: type



# A [rows, 256] input with more elements than the kernels' parallel threshold.
BIG = (_runtime.par_min() // 256 + 1, 256)


def _array(rng, shape, dtype, low=None):
    """Standard-normal values, or uniform in [low, low + 2] (a domain such as x > 0); for
    ``dtype`` bool, a random mask."""
    if dtype == np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    a = rng.standard_normal(shape) if low is None else rng.uniform(low, low + 2, shape)
    return np.asarray(a, dtype=dtype)


def _tensor(rng, shape, dtype, low=None, layout="contiguous"):
    """A Tensor of ``shape`` stored in one of the layouts: contiguous, transposed (last two
    dims swapped), strided (every other row of a bigger array) or expanded (a zero stride)."""
    if layout == "transposed":
        base = _array(rng, shape[:-2] + (shape[-1], shape[-2]), dtype, low)
        return from_numpy(base.swapaxes(-1, -2))
    if layout == "strided":
        return from_numpy(_array(rng, (2 * shape[0],) + shape[1:], dtype, low)[::2])
    if layout == "expanded":
        return from_numpy(np.broadcast_to(_array(rng, (1,) + shape[1:], dtype, low), shape))
    return from_numpy(_array(rng, shape, dtype, low))


NON_CONTIGUOUS = ("transposed", "strided", "expanded")
C, TR = "contiguous", "transposed"        # layouts by short names, for the tables
UNARY_SHAPES = ((3, 4), (), (1,), (0, 3), (2, 1, 3))


def unary_samples(dtype, rng, big=False, low=None):
    """One input: several shapes (0-d, size-0, size-1 dims), then each non-contiguous layout."""
    if big:
        yield Sample("big", (_tensor(rng, BIG, dtype, low),))
        yield Sample("big-transposed", (_tensor(rng, BIG, dtype, low, "transposed"),))
        return
    for s in UNARY_SHAPES:
        yield Sample(f"shape{s}", (_tensor(rng, s, dtype, low),))
    for layout in NON_CONTIGUOUS:
        yield Sample(layout, (_tensor(rng, (3, 4), dtype, low, layout),))


def positive_samples(dtype, rng, big=False):
    """``unary_samples`` in the domain x > 0 (log, sqrt, reciprocal)."""
    return unary_samples(dtype, rng, big, low=0.5)


BINARY_SHAPES = (((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)),
                 ((0, 3), (1, 3)), ((1,), ()))


def binary_samples(dtype, rng, big=False, low=None):
    """Two inputs: broadcasting shape pairs, non-contiguous operands and Python numbers."""
    if big:
        yield Sample("big", (_tensor(rng, BIG, dtype, low), _tensor(rng, BIG, dtype, low)))
        yield Sample("big-broadcast", (_tensor(rng, BIG, dtype, low, "transposed"),
                                       _tensor(rng, BIG[-1:], dtype, low)))
        return
    for sx, sy in BINARY_SHAPES:
        yield Sample(f"{sx}-{sy}", (_tensor(rng, sx, dtype, low), _tensor(rng, sy, dtype, low)))
    yield Sample("transposed-strided", (_tensor(rng, (3, 4), dtype, low, "transposed"),
                                        _tensor(rng, (3, 4), dtype, low, "strided")))
    yield Sample("expanded-contiguous", (_tensor(rng, (3, 4), dtype, low, "expanded"),
                                         _tensor(rng, (3, 4), dtype, low)))
    yield Sample("tensor-number", (_tensor(rng, (3, 4), dtype, low), 1.5))
    yield Sample("number-tensor", (1.5, _tensor(rng, (3, 4), dtype, low)))


def positive_binary_samples(dtype, rng, big=False):
    """``binary_samples`` with both operands in [0.5, 2.5] (div's divisor, pow's base)."""
    return binary_samples(dtype, rng, big, low=0.5)


def alpha_samples(dtype, rng, big=False):
    """``binary_samples`` plus a call with ``alpha`` (add and sub: x ± alpha * y)."""
    yield from binary_samples(dtype, rng, big)
    if not big:
        yield Sample("alpha", (_tensor(rng, (3, 4), dtype), _tensor(rng, (4,), dtype)),
                     {"alpha": 2.5})


def pow_samples(dtype, rng, big=False):
    """``binary_samples`` on positive bases, plus exponents that are exactly 0."""
    yield from positive_binary_samples(dtype, rng, big)
    if not big:
        x = _tensor(rng, (3, 4), dtype, 0.5)
        yield Sample("number-exponent-0", (x, 0.0))
        e = np.asarray(rng.integers(0, 3, (3, 4)), dtype=dtype)
        yield Sample("tensor-exponent-with-0", (x, from_numpy(e)))


def where_samples(dtype, rng, big=False):
    """A bool condition and two values, all three broadcasting."""
    shapes = (((3, 4), (3, 4), (3, 4)), ((4,), (3, 1), ()), ((), (), ()), ((0, 3), (3,), (1,)))
    if big:
        shapes = ((BIG, BIG, BIG[-1:]),)
    for sc, sx, sy in shapes:
        cond = from_numpy(np.asarray(rng.random(sc) < 0.5))
        yield Sample(f"{sc}-{sx}-{sy}", (cond, _tensor(rng, sx, dtype), _tensor(rng, sy, dtype)))
    if not big:
        yield Sample("transposed", (from_numpy(rng.random((3, 4)) < 0.5),
                                    _tensor(rng, (3, 4), dtype, layout="transposed"),
                                    _tensor(rng, (3, 4), dtype, layout="expanded")))


def mask_samples(dtype, rng, big=False):
    """``unary_samples`` of bool masks (whatever ``dtype``)."""
    return unary_samples(np.bool_, rng, big)


def masked_fill_samples(dtype, rng, big=False):
    """x, a bool mask broadcastable to x, and a number or 0-d Tensor value."""
    for s in unary_samples(dtype, rng, big):
        mask = from_numpy(np.asarray(rng.random(s.args[0].shape[-1:]) < 0.5))
        yield Sample(s.desc, (s.args[0], mask, 0.5))
    if not big:
        x = _tensor(rng, (3, 4), dtype)
        yield Sample("tensor-value", (x, from_numpy(np.asarray(rng.random((3, 4)) < 0.5)),
                                      _tensor(rng, (), dtype)))


def clamp_samples(dtype, rng, big=False):
    """Number bounds (both, one, none inverted), Tensor bounds (broadcasting)."""
    for s in unary_samples(dtype, rng, big):
        yield Sample(s.desc, s.args + (-0.5, 0.5))
    if big:
        return
    x = _tensor(rng, (3, 4), dtype)
    yield Sample("min-only", (x,), {"min": -0.5})
    yield Sample("max-only", (x,), {"max": 0.5})
    yield Sample("min>max", (x, 0.5, -0.5))
    yield Sample("tensor-bounds", (x, _tensor(rng, (4,), dtype) - 0.5, 0.5))
    yield Sample("tensor-bounds-both", (x, _tensor(rng, (3, 1), dtype) - 1.0,
                                        _tensor(rng, (), dtype, low=0.0)))


def cast_samples(dtype, rng, big=False):
    """Conversions to float64 (differentiable) and to int64 (not)."""
    for s in unary_samples(dtype, rng, big):
        yield Sample(s.desc, s.args + (np.float64,))
    yield Sample("to-int64", (_tensor(rng, (3, 4), dtype), np.int64), grad=False)


# --- reductions ---
def reduce_samples(dtype, rng, big=False, empty_reduction=True):
    """Reductions over all dims, one dim, several dims (keepdim), 0-d, size-0 and
    non-contiguous inputs. ``empty_reduction`` adds a reduction over a size-0 dim."""
    if big:
        x = _tensor(rng, BIG, dtype)
        yield Sample("big-all", (x,))
        yield Sample("big-dim1", (x, 1))
        yield Sample("big-dim0", (_tensor(rng, BIG, dtype, layout="transposed"), 0))
        return
    x = _tensor(rng, (2, 3, 4), dtype)
    yield Sample("all", (x,))
    yield Sample("dim1", (x, 1))
    yield Sample("dims02-keepdim", (x, (0, 2)), {"keepdim": True})
    yield Sample("dim-1", (x, -1))
    yield Sample("0-d", (_tensor(rng, (), dtype),))
    yield Sample("size1", (_tensor(rng, (1, 3), dtype), 0))
    yield Sample("size0-keep-dim", (_tensor(rng, (0, 3), dtype), 1))
    if empty_reduction:
        yield Sample("size0-reduced-dim", (_tensor(rng, (0, 3), dtype), 0))
    for layout in NON_CONTIGUOUS:      # along dim 1: an expanded input has no ties there
        yield Sample(layout, (_tensor(rng, (3, 4), dtype, layout=layout), 1))


def mean_samples(dtype, rng, big=False):
    """``reduce_samples`` without a mean over zero elements (an error, not a value)."""
    return reduce_samples(dtype, rng, big, empty_reduction=False)


def maxmin_samples(dtype, rng, big=False):
    """max/min: of everything, along a dim (values and indices), keepdim, 0-d, size-0."""
    if big:
        yield Sample("big-all", (_tensor(rng, BIG, dtype),))
        yield Sample("big-dim1", (_tensor(rng, BIG, dtype), 1))
        return
    x = _tensor(rng, (3, 4), dtype)
    yield Sample("all", (x,))
    yield Sample("dim1", (x, 1))
    yield Sample("dim0-keepdim", (x, 0), {"keepdim": True})
    yield Sample("0-d", (_tensor(rng, (), dtype),))
    yield Sample("0-d-dim0", (_tensor(rng, (), dtype), 0))
    yield Sample("size0-keep-dim", (_tensor(rng, (0, 3), dtype), 1))
    for layout in NON_CONTIGUOUS:
        yield Sample(layout, (_tensor(rng, (3, 4), dtype, layout=layout), 1))


def dim_samples(dtype, rng, big=False):
    """Ops along one dim (softmax, logsumexp): each dim, 0-d, size-0, non-contiguous."""
    if big:
        yield Sample("big-dim1", (_tensor(rng, BIG, dtype), 1))
        yield Sample("big-dim0", (_tensor(rng, BIG, dtype, layout="transposed"), 0))
        return
    x = _tensor(rng, (2, 3, 4), dtype)
    for d in (0, 1, -1):
        yield Sample(f"dim{d}", (x, d))
    yield Sample("0-d", (_tensor(rng, (), dtype), 0))
    yield Sample("size1", (_tensor(rng, (3, 1), dtype), 1))
    yield Sample("size0", (_tensor(rng, (0, 3), dtype), 1))
    for layout in NON_CONTIGUOUS:
        yield Sample(layout, (_tensor(rng, (3, 4), dtype, layout=layout), 0))


def logsumexp_samples(dtype, rng, big=False):
    """``dim_samples`` plus keepdim."""
    yield from dim_samples(dtype, rng, big)
    if not big:
        yield Sample("keepdim", (_tensor(rng, (3, 4), dtype), 1), {"keepdim": True})


def arg_samples(dtype, rng, big=False):
    """argmax/argmin: flattened, along a dim, keepdim, non-contiguous."""
    x = _tensor(rng, BIG if big else (3, 4), dtype)
    yield Sample("all", (x,))
    yield Sample("dim1", (x, 1))
    yield Sample("dim0-keepdim", (x, 0), {"keepdim": True})
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout="transposed"), 1))


# --- matrix products ---
def matmul_samples(dtype, rng, big=False):
    """matmul: 2-D, vector operands, batched with broadcast batch dims, size-0, transposed."""
    if big:
        yield Sample("big", (_tensor(rng, (300, 256), dtype), _tensor(rng, (256, 300), dtype)))
        return
    pairs = (((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
             ((2, 3, 4), (2, 4, 2)), ((2, 1, 3, 4), (3, 4, 2)), ((2, 3, 4), (4, 2)),
             ((1, 4), (4, 1)), ((0, 3), (3, 2)), ((3, 0), (0, 2)), ((2, 0, 3), (2, 3, 2)))
    for sa, sb in pairs:
        yield Sample(f"{sa}@{sb}", (_tensor(rng, sa, dtype), _tensor(rng, sb, dtype)))
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout=TR),
                                _tensor(rng, (4, 2), dtype, layout=TR)))


def _products(pairs):
    def samples(dtype, rng, big=False):
        for sa, sb in pairs:
            yield Sample(f"{sa}@{sb}", (_tensor(rng, sa, dtype), _tensor(rng, sb, dtype)))
        sa, sb = pairs[0]
        yield Sample("transposed", (_tensor(rng, sa, dtype, layout=TR) if len(sa) > 1
                                    else _tensor(rng, sa, dtype, layout="strided"),
                                    _tensor(rng, sb, dtype, layout="strided")))
    samples.__doc__ = f"Products of shapes {', '.join(f'{a}@{b}' for a, b in pairs)}."
    return samples


mm_samples = _products((((3, 4), (4, 2)), ((1, 1), (1, 3)), ((0, 4), (4, 2)), ((3, 0), (0, 2))))
bmm_samples = _products((((2, 3, 4), (2, 4, 2)), ((1, 1, 3), (1, 3, 1)),
                         ((0, 3, 4), (0, 4, 2)), ((2, 0, 4), (2, 4, 2))))
dot_samples = _products((((4,), (4,)), ((1,), (1,)), ((0,), (0,))))


def linear_samples(dtype, rng, big=False):
    """linear: x [..., in] with weight [out, in] and optional bias [out]."""
    if big:
        yield Sample("big", (_tensor(rng, (600, 256), dtype), _tensor(rng, (300, 256), dtype),
                             _tensor(rng, (300,), dtype)))
        return
    w, b = _tensor(rng, (5, 4), dtype), _tensor(rng, (5,), dtype)
    yield Sample("2d", (_tensor(rng, (3, 4), dtype), w, b))
    yield Sample("no-bias", (_tensor(rng, (3, 4), dtype), w))
    yield Sample("1-d", (_tensor(rng, (4,), dtype), w, b))
    yield Sample("3-d", (_tensor(rng, (2, 3, 4), dtype), w, b))
    yield Sample("size0-batch", (_tensor(rng, (0, 4), dtype), w, b))
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout=TR),
                                _tensor(rng, (5, 4), dtype, layout=TR), b))


def cdist_samples(dtype, rng, big=False):
    """cdist: [N, D] against [M, D] rows, squared or not, size-0, transposed, infinities;
    then each other metric: plain, transposed, one row, and its special inputs (a zero row
    for cosine, coinciding coordinates for Manhattan: no gradient there)."""
    metrics = ("sqeuclidean", "cosine", "inner_product", "manhattan")
    if big:
        for squared in (False, True):
            yield Sample(f"big-squared={squared}", (_tensor(rng, (600, 32), dtype),
                                                    _tensor(rng, (500, 32), dtype), squared))
        for metric in metrics:
            yield Sample(f"big-{metric}", (_tensor(rng, (600, 32), dtype),
                                           _tensor(rng, (500, 32), dtype)), {"metric": metric})
        return
    for squared in (False, True):
        yield Sample(f"squared={squared}", (_tensor(rng, (3, 4), dtype),
                                            _tensor(rng, (5, 4), dtype), squared))
    yield Sample("one-row", (_tensor(rng, (1, 2), dtype), _tensor(rng, (3, 2), dtype)))
    yield Sample("size0", (_tensor(rng, (0, 4), dtype), _tensor(rng, (3, 4), dtype)))
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout=TR),
                                _tensor(rng, (2, 4), dtype, layout="strided")))
    x1 = _array(rng, (2, 3), dtype)
    x1[0, 1] = np.inf
    yield Sample("inf", (from_numpy(x1), _tensor(rng, (2, 3), dtype)), grad=False)
    for metric in metrics:
        kw = {"metric": metric}
        yield Sample(metric, (_tensor(rng, (3, 4), dtype), _tensor(rng, (5, 4), dtype)), kw)
        yield Sample(f"{metric}-transposed", (_tensor(rng, (3, 4), dtype, layout=TR),
                                              _tensor(rng, (2, 4), dtype, layout="strided")),
                     kw)
        yield Sample(f"{metric}-one-row", (_tensor(rng, (1, 2), dtype),
                                           _tensor(rng, (3, 2), dtype)), kw)
        yield Sample(f"{metric}-size0", (_tensor(rng, (0, 4), dtype),
                                         _tensor(rng, (3, 4), dtype)), kw)
    # 19 features: the kernels' 8-wide loops and their remainders
    yield Sample("manhattan-wide", (_tensor(rng, (5, 19), dtype), _tensor(rng, (9, 19), dtype)),
                 {"metric": "manhattan"})
    x1 = _array(rng, (3, 4), dtype)
    x1[1] = 0.0
    yield Sample("cosine-zero-row", (from_numpy(x1), _tensor(rng, (2, 4), dtype)),
                 {"metric": "cosine"}, grad=False)
    x1, x2 = _array(rng, (2, 3), dtype), _array(rng, (3, 3), dtype)
    x2[1, 2] = x1[0, 2]
    yield Sample("manhattan-tie", (from_numpy(x1), from_numpy(x2)), {"metric": "manhattan"},
                 grad=False)


# --- losses ---
def _labels(rng, n, c):
    return from_numpy(rng.integers(0, c, n))


def classification_samples(dtype, rng, big=False, **kwargs):
    """scores [N, C] and int labels [N] under each reduction; 1 row, 0 rows, transposed."""
    if big:
        n, c = BIG[0] * 2, 128
        for reduction in ("mean", "sum"):
            yield Sample(f"big-{reduction}", (_tensor(rng, (n, c), dtype), _labels(rng, n, c)),
                         dict(kwargs, reduction=reduction))
        return
    for reduction in ("mean", "sum", "none"):
        yield Sample(reduction, (_tensor(rng, (4, 5), dtype), _labels(rng, 4, 5)),
                     dict(kwargs, reduction=reduction))
    yield Sample("one-row", (_tensor(rng, (1, 3), dtype), _labels(rng, 1, 3)), kwargs)
    yield Sample("one-class", (_tensor(rng, (3, 1), dtype), _labels(rng, 3, 1)), kwargs)
    for reduction in ("sum", "none"):
        yield Sample(f"size0-{reduction}", (_tensor(rng, (0, 5), dtype), _labels(rng, 0, 5)),
                     dict(kwargs, reduction=reduction))
    yield Sample("transposed", (_tensor(rng, (4, 5), dtype, layout=TR), _labels(rng, 4, 5)),
                 kwargs)


def nll_samples(dtype, rng, big=False):
    """``classification_samples`` on log-probabilities, plus class weights and an ignored
    label."""
    for s in classification_samples(dtype, rng, big):
        logp = from_numpy(ref_log_softmax(s.args[0].numpy(), -1))
        yield Sample(s.desc, (logp,) + s.args[1:], s.kwargs)
    if not big:
        logp = from_numpy(ref_log_softmax(_array(rng, (4, 5), dtype), -1))
        labels = from_numpy(np.array([0, 4, -100, 2]))
        weight = from_numpy(_array(rng, (5,), dtype, low=0.5))
        for reduction in ("mean", "sum", "none"):
            yield Sample(f"weight-ignore-{reduction}", (logp, labels),
                         {"weight": weight, "reduction": reduction})


def hinge_samples(dtype, rng, big=False):
    """``classification_samples`` with a margin of 0.5."""
    return classification_samples(dtype, rng, big, margin=0.5)


def mse_samples(dtype, rng, big=False):
    """Pairs of one shape under each reduction: 0-d, size-0, non-contiguous."""
    if big:
        for reduction in ("mean", "sum", "none"):
            yield Sample(f"big-{reduction}", (_tensor(rng, BIG, dtype), _tensor(rng, BIG, dtype)),
                         {"reduction": reduction})
        return
    for reduction in ("mean", "sum", "none"):
        yield Sample(reduction, (_tensor(rng, (3, 4), dtype), _tensor(rng, (3, 4), dtype)),
                     {"reduction": reduction})
        yield Sample(f"0-d-{reduction}", (_tensor(rng, (), dtype), _tensor(rng, (), dtype)),
                     {"reduction": reduction})
    yield Sample("size0-sum", (_tensor(rng, (0, 3), dtype), _tensor(rng, (0, 3), dtype)),
                 {"reduction": "sum"})
    yield Sample("transposed-expanded", (_tensor(rng, (3, 4), dtype, layout=TR),
                                         _tensor(rng, (3, 4), dtype, layout="expanded")))


# --- calls that must fail, with a message naming the op ---
def bad_calls(*calls):
    """An ``error_inputs`` generator over ``calls``: (desc, make_args, error), where
    ``make_args(t)`` builds the arguments with ``t(*shape)``, a Tensor factory."""
    def error_inputs(dtype, rng):
        def t(*shape):
            return _tensor(rng, shape, dtype)
        for desc, make_args, error in calls:
            yield BadCall(desc, make_args(t), error)
    error_inputs.__doc__ = f"Bad calls: {', '.join(c[0] for c in calls)}."
    return error_inputs

