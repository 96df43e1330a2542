"""The op registry: one ``OpInfo`` entry per public op, the index behind the docs and the tests.

Each entry says what the op computes and how it is differentiated, as text a student can read
(``z = x * y``; ``gx = g * y,   gy = g * x``), and everything a generic test needs to check it:
the Function and kernel that implement it, sample inputs (broadcasting, size-0 and size-1
dims, 0-d tensors, transposed, strided and expanded inputs), a numpy reference, and which
derivatives it supports. ``docs/ops.md``, ``tensorgrad ops`` and ``tests/test_registry.py``
are generated from these entries, so an op is documented and tested the moment it is declared.

One source of truth for the formulas: ``forward`` and ``vjp`` are read from the Function's
docstring, written ``FORWARD;   VJP`` (the first paragraph, split at its first ``;``).
An entry spells its formula out only when no Function docstring states it: compositions of
other ops (``stack``), ops without a Function (``argmax``), or a Function shared by several
ops whose docstring names one of them (``Min`` reuses ``Max``'s).

Notation: g is the upstream gradient (the output's shape), gx the gradient for input x,
[cond] is 1 where cond holds else 0.
"""
import dataclasses
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from tensorgrad import ops as _ops
from tensorgrad._kernels import runtime as _runtime
from tensorgrad._tensor import from_numpy
from tensorgrad.ops import activation, blas, distance, elementwise, linear, loss, reduce, shape

__all__ = ["FAMILIES", "BadCall", "OpInfo", "Sample", "markdown", "table"]

FAMILIES = ("elementwise", "activation", "reduce", "shape", "blas", "distance", "loss")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Value tolerances (rtol, atol) against the numpy reference, which computes in the inputs'
# dtype: float32 is loose (numpy and our kernels round differently), float64 nearly exact.
TOLERANCES = {np.dtype(np.float32): (1e-4, 1e-5), np.dtype(np.float64): (1e-10, 1e-12)}


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


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """Everything about one public op: its formulas, implementation and how to test it.

    ``sample_inputs(dtype, rng, big=False)`` yields ``Sample``s; with ``big=True`` it yields
    inputs large enough for the kernels to run their parallel loops (the thread-invariance
    test); ``error_inputs(dtype, rng)`` yields ``BadCall``s. ``ref`` is the numpy reference,
    called with ndarrays in place of Tensors; it computes in the inputs' dtype, so its result
    also gives the expected dtype.
    ``thread_ulps`` is 0 when results must be bitwise equal under any thread count (our own
    kernels); for BLAS-backed ops (BLAS may split sums by thread count) it is the tolerance,
    in units of eps times the largest magnitude; None for ops that run no threaded code
    (numpy views and copies).
    """
    name: str
    family: str
    forward: str
    vjp: str
    function: type | None
    kernel: str
    op: Callable
    sample_inputs: Callable
    ref: Callable
    dtypes: tuple = FLOAT_DTYPES
    supports_grad: bool = True
    supports_gradgrad: bool = True
    thread_ulps: float | None = 0
    error_inputs: Callable | None = None
    note: str = ""
    tolerances: dict = dataclasses.field(default_factory=lambda: dict(TOLERANCES))


# ---------------------------------------------------------------------------------------------
# formulas from docstrings
# ---------------------------------------------------------------------------------------------
def _formulas(name, text):
    """(forward, vjp) from ``"FORWARD;   VJP"``: the first paragraph, split at its first ';'."""
    first = " ".join(text.strip().split("\n\n")[0].split())
    forward, sep, vjp = first.partition(";")
    if not sep:
        raise ValueError(f"registry: the formula of {name!r} is not 'FORWARD;   VJP': {first!r}")
    return forward.strip(), vjp.strip()


def _entry(name, family, function, kernel, samples, ref, *, formula=None, op=None, **extra):
    """An OpInfo whose formulas come from ``function``'s docstring, unless ``formula`` (for
    ops whose Function docstring does not state them) is given."""
    text = formula if formula is not None else inspect.getdoc(function)
    forward, vjp = _formulas(name, text)
    if op is None:
        op = getattr(_ops, name)
    return OpInfo(name=name, family=family, forward=forward, vjp=vjp, function=function,
                  kernel=kernel, op=op, sample_inputs=samples, ref=ref, **extra)


# ---------------------------------------------------------------------------------------------
# sample inputs (shared by the ops of a family)
# ---------------------------------------------------------------------------------------------
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


# --- shape ops: each takes its own arguments, so the generators are small tables ---
def _shape_op_samples(calls):
    """A generator over ``calls``: (desc, input shape, layout, more args[, kwargs])."""
    def samples(dtype, rng, big=False):
        for desc, s, layout, more, *kwargs in calls:
            yield Sample(desc, (_tensor(rng, s, dtype, layout=layout),) + more, *kwargs)
    samples.__doc__ = f"Shape-op calls: {', '.join(c[0] for c in calls)}."
    return samples


C, TR = "contiguous", "transposed"
view_samples = _shape_op_samples([
    ("2d", (3, 4), C, ((4, 3),)), ("infer", (2, 3, 4), C, (-1,)),
    ("0-d", (), C, ((1, 1),)), ("size0", (0, 3), C, ((3, 0),)),
    ("varargs", (3, 4), C, (2, 6))])
reshape_samples = _shape_op_samples([
    ("2d", (3, 4), C, ((4, 3),)), ("infer", (2, 3, 4), C, (-1, 4)),
    ("0-d", (), C, ((1,),)), ("size0", (0, 3), C, ((3, 0),)),
    ("transposed-copies", (3, 4), TR, ((12,),)), ("strided", (3, 4), "strided", (4, 3))])
flatten_samples = _shape_op_samples([
    ("all", (2, 3, 4), C, ()), ("from1", (2, 3, 4), C, (1,)),
    ("0to1", (2, 3, 4), C, (0, 1)), ("0-d", (), C, ()), ("size0", (2, 0, 3), C, ()),
    ("transposed", (3, 4), TR, ())])
transpose_samples = _shape_op_samples([
    ("default", (3, 4), C, ()), ("0-2", (2, 3, 4), C, (0, 2)),
    ("negative", (2, 3, 4), C, (-1, 0)), ("0-d", (), C, ()), ("1-d", (3,), C, ()),
    ("size0", (0, 3), C, (0, 1)), ("transposed", (3, 4), TR, (0, 1))])
t_samples = _shape_op_samples([
    ("2d", (3, 4), C, ()), ("1-d", (3,), C, ()), ("0-d", (), C, ()),
    ("size0", (0, 3), C, ()), ("transposed", (3, 4), TR, ())])
permute_samples = _shape_op_samples([
    ("tuple", (2, 3, 4), C, ((2, 0, 1),)), ("varargs", (2, 3, 4), C, (1, 2, 0)),
    ("negative", (2, 3, 4), C, (-1, 0, 1)), ("0-d", (), C, ((),)),
    ("size0", (0, 3), C, (1, 0)), ("transposed", (3, 4), TR, (1, 0))])
movedim_samples = _shape_op_samples([
    ("0to2", (2, 3, 4), C, (0, 2)), ("-1to0", (2, 3, 4), C, (-1, 0)),
    ("size0", (0, 3, 2), C, (0, 1)), ("transposed", (3, 4), TR, (0, 1))])
squeeze_samples = _shape_op_samples([
    ("all", (1, 3, 1), C, ()), ("dim", (1, 3, 1), C, (2,)),
    ("dims", (1, 3, 1), C, ((0, 2),)), ("not-size1", (2, 3), C, (0,)),
    ("0-d", (), C, ()), ("size0", (0, 1), C, (1,)), ("transposed", (1, 4), TR, ())])
unsqueeze_samples = _shape_op_samples([
    ("front", (3, 4), C, (0,)), ("back", (3, 4), C, (-1,)), ("0-d", (), C, (0,)),
    ("size0", (0, 3), C, (1,)), ("transposed", (3, 4), TR, (1,))])
expand_samples = _shape_op_samples([
    ("size1", (3, 1), C, (3, 4)), ("new-dims", (4,), C, ((2, 3, 4),)),
    ("keep-1", (3, 1), C, (-1, 5)), ("0-d", (), C, ((2,),)),
    ("to-size0", (1, 3), C, ((0, 3),)), ("transposed", (1, 4), TR, (2, 1, 4))])
contiguous_samples = _shape_op_samples([
    ("contiguous", (3, 4), C, ()), ("0-d", (), C, ()), ("size0", (0, 3), C, ()),
    ("transposed", (3, 4), TR, ()), ("strided", (3, 4), "strided", ()),
    ("expanded", (3, 4), "expanded", ())])
chunk_samples = _shape_op_samples([
    ("even", (4, 3), C, (2,)), ("uneven-dim1", (3, 5), C, (2, 1)),
    ("more-chunks-than-rows", (2, 3), C, (4,)), ("size0-dim0", (0, 3), C, (2,)),
    ("size0-other-dim", (0, 4), C, (2, 1)), ("transposed", (4, 3), TR, (2, 1))])
split_samples = _shape_op_samples([
    ("size", (5, 3), C, (2,)), ("sections", (3, 5), C, ([1, 4], 1)),
    ("keyword-dim", (3, 4), C, (2,), {"dim": 1}), ("size0", (0, 3), C, (2,)),
    ("transposed", (4, 3), TR, (2, 1))])
narrow_samples = _shape_op_samples([
    ("dim0", (4, 3), C, (0, 1, 2)), ("dim1", (3, 4), C, (1, 0, 3)),
    ("negative-start", (4, 3), C, (0, -2, 2)), ("length0", (4, 3), C, (0, 2, 0)),
    ("transposed", (3, 4), TR, (1, 1, 2))])
index_samples = _shape_op_samples([
    ("int", (3, 4), C, (1,)), ("slices", (3, 4), C, ((slice(None), slice(1, 3)),)),
    ("step", (5, 3), C, (slice(None, None, 2),)),
    ("ints", (3, 4), C, ((1, 2),)),
    ("none-ellipsis", (2, 3, 4), C, ((None, Ellipsis, 1),)),
    ("repeated-int-array", (3, 4), C, (np.array([0, 2, 0]),)),
    ("bool-mask", (3,), C, (np.array([True, False, True]),)),
    ("0-d", (), C, ((),)), ("size0", (0, 3), C, ((slice(None), 1),)),
    ("transposed", (3, 4), TR, ((slice(None), np.array([3, 1, 3])),))])


def like_samples(dtype, rng, big=False):
    """(x, other): view_as, reshape_as and expand_as take ``other``'s shape."""
    pairs = (("2d", (3, 4), (4, 3)), ("to-1d", (2, 3), (6,)), ("0-d", (), (1, 1)),
             ("size0", (0, 3), (3, 0)))
    for desc, s, so in pairs:
        yield Sample(desc, (_tensor(rng, s, dtype), _tensor(rng, so, dtype)))


def expand_as_samples(dtype, rng, big=False):
    """(x, other) with x broadcastable to other's shape."""
    pairs = (("size1", (3, 1), (3, 4)), ("new-dims", (4,), (2, 3, 4)), ("0-d", (), (2,)),
             ("to-size0", (1, 3), (0, 3)))
    for desc, s, so in pairs:
        yield Sample(desc, (_tensor(rng, s, dtype), _tensor(rng, so, dtype)))
    yield Sample("transposed", (_tensor(rng, (1, 4), dtype, layout=TR),
                                _tensor(rng, (2, 1, 4), dtype)))


def index_select_samples(dtype, rng, big=False):
    """index_select along each dim, with repeats, an empty index, a 0-d input, transposed."""
    x = _tensor(rng, (3, 4), dtype)
    yield Sample("dim1-repeats", (x, 1, from_numpy(np.array([3, 0, 3]))))
    yield Sample("dim0", (x, 0, from_numpy(np.array([2, 1]))))
    yield Sample("empty-index", (x, 1, from_numpy(np.zeros(0, np.int64))))
    yield Sample("0-d", (_tensor(rng, (), dtype), 0, from_numpy(np.array([0]))))
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout=TR), 0,
                                from_numpy(np.array([0, 2, 0]))))


def gather_samples(dtype, rng, big=False):
    """gather along each dim, with repeats, a smaller index than x, 0-size and transposed x."""
    x = _tensor(rng, (3, 4), dtype)
    idx = from_numpy(rng.integers(0, 4, (3, 5)))
    yield Sample("dim1-repeats", (x, 1, idx))
    yield Sample("dim0", (x, 0, from_numpy(rng.integers(0, 3, (2, 4)))))
    yield Sample("smaller-index", (x, 1, from_numpy(rng.integers(0, 4, (2, 2)))))
    yield Sample("size0", (x, 1, from_numpy(np.zeros((3, 0), np.int64))))
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout=TR), 1, idx))


def cat_samples(dtype, rng, big=False):
    """cat (a sequence of tensors): along each dim, one input, a size-0 piece, transposed."""
    def ts(*shapes, layout=C):
        return [_tensor(rng, s, dtype, layout=layout) for s in shapes]
    yield Sample("dim0", (ts((2, 3), (1, 3), (3, 3)), 0))
    yield Sample("dim1", (ts((2, 3), (2, 1)), 1))
    yield Sample("one", (ts((2, 3)),))
    yield Sample("size0-piece", (ts((0, 3), (2, 3)), 0))
    yield Sample("transposed", (ts((3, 4), (3, 4), layout=TR), -1))


def stack_samples(dtype, rng, big=False):
    """stack: a new leading, middle or last dim; 0-d, size-0 and transposed inputs."""
    def ts(s, n=2, layout=C):
        return [_tensor(rng, s, dtype, layout=layout) for _ in range(n)]
    yield Sample("dim0", (ts((2, 3), 3), 0))
    yield Sample("dim1", (ts((2, 3)), 1))
    yield Sample("dim-1", (ts((2, 3)), -1))
    yield Sample("0-d", (ts(()),))
    yield Sample("size0", (ts((0, 3)),))
    yield Sample("transposed", (ts((3, 4), layout=TR), 1))


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
    """cdist: [N, D] against [M, D] rows, squared or not, size-0, transposed, infinities."""
    if big:
        for squared in (False, True):
            yield Sample(f"big-squared={squared}", (_tensor(rng, (600, 32), dtype),
                                                    _tensor(rng, (500, 32), dtype), squared))
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
        logp = from_numpy(_ref_log_softmax(s.args[0].numpy(), -1))
        yield Sample(s.desc, (logp,) + s.args[1:], s.kwargs)
    if not big:
        logp = from_numpy(_ref_log_softmax(_array(rng, (4, 5), dtype), -1))
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


# ---------------------------------------------------------------------------------------------
# numpy references (called with float64 ndarrays in place of float Tensors)
# ---------------------------------------------------------------------------------------------
def _ref_clamp(x, min=None, max=None):
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    return np.minimum(np.maximum(x, lo), hi)        # min > max gives max, as in PyTorch


def _ref_maxmin(np_fn, np_arg):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return np_fn(x)
        if x.ndim == 0:
            return x, np.int64(0)
        return np_fn(x, axis=dim, keepdims=keepdim), np_arg(x, axis=dim, keepdims=keepdim)
    return ref


def _ref_arg(np_arg):
    def ref(x, dim=None, keepdim=False):
        return np_arg(x, axis=dim, keepdims=keepdim) if dim is not None else np_arg(x)
    return ref


def _ref_logsumexp(x, dim, keepdim=False):
    x = x.reshape(1) if x.ndim == 0 else x
    m = np.max(x, axis=dim, keepdims=True) if x.shape[dim] else np.zeros_like(x)
    r = np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True)) + m
    return r if keepdim else np.squeeze(r, axis=dim)


def _ref_softmax(x, dim=-1):
    if x.ndim == 0:
        return np.ones_like(x)
    e = np.exp(x - np.max(x, axis=dim, keepdims=True)) if x.size else x
    return e / np.sum(e, axis=dim, keepdims=True)


def _ref_log_softmax(x, dim=-1):
    return np.log(_ref_softmax(x, dim))


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape


def _ref_expand(x, *shape):
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    return np.broadcast_to(x, tuple(x.shape[i - lead] if s == -1 else s
                                    for i, s in enumerate(shape)))


def _ref_flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def _ref_transpose(x, dim0=-2, dim1=-1):
    return x if x.ndim < 2 else np.swapaxes(x, dim0, dim1)


def _ref_squeeze(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = (dim,) if isinstance(dim, int) else dim
    return np.squeeze(x, axis=tuple(d for d in dims if x.shape[d] == 1))


def _ref_split(x, size_or_sections, dim=0):
    n = x.shape[dim]
    if isinstance(size_or_sections, int):
        cuts = range(size_or_sections, n, size_or_sections)
    else:
        cuts = np.cumsum(size_or_sections)[:-1]
    return tuple(np.split(x, list(cuts), axis=dim))


def _ref_chunk(x, chunks, dim=0):
    if x.shape[dim] == 0:
        return (x,) * chunks            # as PyTorch: ``chunks`` empty pieces
    return _ref_split(x, max(-(-x.shape[dim] // chunks), 1), dim)


def _ref_narrow(x, dim, start, length):
    start = start % x.shape[dim] if start < 0 else start     # a negative start counts back
    return np.take(x, range(start, start + length), axis=dim)


def _ref_index(x, key):
    return x[key]


def _ref_gather(x, dim, index):
    corner = tuple(slice(None) if i == dim else slice(0, n) for i, n in enumerate(index.shape))
    return np.take_along_axis(x[corner], index, axis=dim)


def _ref_linear(x, weight, bias=None):
    y = x @ weight.T
    return y if bias is None else y + bias


def _ref_cdist(x1, x2, squared=False):
    d2 = np.sum((x1[:, None, :] - x2[None, :, :]) ** 2, axis=-1)
    return d2 if squared else np.sqrt(d2)


def _reduce_rows(rows, reduction):
    if reduction == "none":
        return rows
    total = np.sum(rows)
    return total if reduction == "sum" else (total / rows.size if rows.size else np.nan)


def _ref_cross_entropy(scores, labels, reduction="mean"):
    rows = np.array([_ref_logsumexp(s, 0) - s[y] for s, y in zip(scores, labels)],
                    dtype=scores.dtype)
    return _reduce_rows(rows, reduction)


def _ref_hinge(scores, labels, margin=1.0, reduction="mean"):
    rows = []
    for s, y in zip(scores, labels):
        m = np.maximum(0.0, s - s[y] + margin)
        rows.append(np.sum(m) - m[y])
    return _reduce_rows(np.array(rows, dtype=scores.dtype), reduction)


def _ref_nll(logp, labels, weight=None, ignore_index=-100, reduction="mean"):
    keep = labels != ignore_index
    y = np.where(keep, labels, 0)
    w = (np.ones(logp.shape[1], logp.dtype) if weight is None else weight)[y] * keep
    rows = -w * logp[np.arange(len(y)), y]
    if reduction == "mean":
        return np.sum(rows) / np.sum(w)
    return _reduce_rows(rows, reduction)


def _ref_masked_fill(x, mask, value):
    return np.where(mask, np.asarray(value, x.dtype), x)


def _ref_mse(x, t, reduction="mean"):
    return _reduce_rows((x - t) ** 2, reduction)


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------
BLAS_ULPS = 64      # BLAS (OpenBLAS) may split a dot product differently with more threads
NO_THREADS = {"thread_ulps": None}      # numpy views/copies: no threaded code to compare


def _elementwise_entries():
    E, K = elementwise, "elementwise"

    def binary(name, cls, samples=binary_samples, ref=None, error_inputs=None):
        return _entry(name, K, cls, f"elementwise.binary({cls.__name__.upper()})", samples, ref,
                      error_inputs=error_inputs)

    def unary(name, cls, samples=unary_samples, ref=None):
        return _entry(name, K, cls, f"elementwise.unary({cls.__name__.upper()})", samples, ref)

    def compare(name, symbol, np_fn):
        return _entry(name, K, E.Compare, f"numpy.{np_fn.__name__}", binary_samples, np_fn,
                      formula=f"mask = x {symbol} y;   none (a mask: not differentiable)",
                      supports_grad=False, supports_gradgrad=False, **NO_THREADS)

    return [
        binary("add", E.Add, alpha_samples, lambda x, y, alpha=1: x + alpha * y,
               bad_calls(("not-broadcastable", lambda t: (t(3, 4), t(3)), ValueError))),
        binary("sub", E.Sub, alpha_samples, lambda x, y, alpha=1: x - alpha * y),
        binary("mul", E.Mul, ref=np.multiply),
        binary("div", E.Div, positive_binary_samples, np.true_divide),
        binary("pow", E.Pow, pow_samples, np.power),
        binary("maximum", E.Maximum, ref=np.maximum),
        _entry("minimum", K, E.Minimum, "elementwise.binary(MINIMUM)", binary_samples,
               np.minimum, formula="z = min(x, y);   gx = g * [x wins],   gy = g * [y wins] "
                                   "(a tie splits g evenly)"),
        unary("neg", E.Neg, ref=np.negative),
        unary("exp", E.Exp, ref=np.exp),
        unary("log", E.Log, positive_samples, np.log),
        unary("sqrt", E.Sqrt, positive_samples, np.sqrt),
        unary("square", E.Square, ref=np.square),
        unary("reciprocal", E.Reciprocal, positive_samples, np.reciprocal),
        unary("abs", E.Abs, ref=np.abs),
        _entry("sign", K, None, "numpy.sign", unary_samples, np.sign,
               formula="z = sign(x) ∈ {-1, 0, 1};   none (piecewise constant)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
        _entry("clamp", K, E.Clamp, "elementwise.clamp", clamp_samples, _ref_clamp,
               error_inputs=bad_calls(("no-bounds", lambda t: (t(3),), ValueError)),
               note="Tensor bounds: ClampTensor, elementwise.binary MAXIMUM then MINIMUM"),
        _entry("clip", K, E.Clamp, "elementwise.clamp", clamp_samples, _ref_clamp),
        _entry("masked_fill", K, E.Where, "elementwise.where", masked_fill_samples,
               _ref_masked_fill,
               formula="z = where(mask, value, x);   gx = g where mask is false else 0,   "
                       "g_value = Σ g over the filled entries"),
        _entry("where", K, E.Where, "elementwise.where", where_samples,
               lambda c, x, y: np.where(c, x, y), error_inputs=bad_calls(
                   ("not-broadcastable",
                    lambda t: (from_numpy(np.zeros(2, bool)), t(3, 4), t(3, 4)), ValueError))),
        _entry("cast", K, E.Cast, "numpy (astype)", cast_samples,
               lambda x, dtype: x.astype(dtype), **NO_THREADS),
        compare("eq", "==", np.equal),
        compare("ne", "!=", np.not_equal),
        compare("lt", "<", np.less),
        compare("le", "<=", np.less_equal),
        compare("gt", ">", np.greater),
        compare("ge", ">=", np.greater_equal),
        _entry("logical_not", K, E.LogicalNot, "numpy.logical_not", mask_samples,
               np.logical_not, formula="z = ~mask;   none (a mask: not differentiable)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
    ]


def _activation_entries():
    A = activation
    return [
        _entry("relu", "activation", A.ReLU, "activation.relu_forward", unary_samples,
               lambda x: np.maximum(x, 0.0)),
        _entry("sigmoid", "activation", A.Sigmoid, "activation.sigmoid_forward", unary_samples,
               lambda x: 1.0 / (1.0 + np.exp(-x))),
        _entry("tanh", "activation", A.Tanh, "activation.tanh_forward", unary_samples, np.tanh),
        _entry("softmax", "activation", A.Softmax, "reduce.softmax_mid", dim_samples,
               _ref_softmax,
               error_inputs=bad_calls(("dim-out-of-range", lambda t: (t(3, 4), 2), IndexError))),
        _entry("log_softmax", "activation", A.LogSoftmax, "reduce.log_softmax_mid", dim_samples,
               _ref_log_softmax),
    ]


def _reduce_entries():
    R = reduce
    return [
        _entry("sum", "reduce", R.Sum, "reduce.sum_all / reduce.sum_mid", reduce_samples,
               lambda x, dim=None, keepdim=False: np.sum(x, axis=dim, keepdims=keepdim)),
        _entry("mean", "reduce", R.Sum, "reduce.sum_all / reduce.sum_mid (scale 1/n)",
               mean_samples,
               lambda x, dim=None, keepdim=False: np.mean(x, axis=dim, keepdims=keepdim),
               error_inputs=bad_calls(("zero-elements", lambda t: (t(0, 3), 0), ValueError)),
               formula="z = sum(x, dims) / n;   gx = broadcast(g) / n"),
        _entry("max", "reduce", R.Max, "reduce.max_mid", maxmin_samples,
               _ref_maxmin(np.max, np.argmax),
               error_inputs=bad_calls(("empty-dim", lambda t: (t(3, 0), 1), ValueError))),
        _entry("min", "reduce", R.Min, "reduce.min_mid", maxmin_samples,
               _ref_maxmin(np.min, np.argmin),
               formula="z = min(x, dim);   gx = g routed to the arg-min position (first on "
                       "ties)."),
        _entry("logsumexp", "reduce", R.LogSumExp, "reduce.logsumexp_mid", logsumexp_samples,
               _ref_logsumexp),
        _entry("amax", "reduce", R.AMax, "numpy.max", mean_samples,
               lambda x, dim=None, keepdim=False: np.max(x, axis=dim, keepdims=keepdim),
               **NO_THREADS),
        _entry("amin", "reduce", R.AMin, "numpy.min", mean_samples,
               lambda x, dim=None, keepdim=False: np.min(x, axis=dim, keepdims=keepdim),
               formula="z = min(x, dims);   gx = g * [x == z] / count(x == z)   (ties share g)",
               **NO_THREADS),
        _entry("argmax", "reduce", None, "numpy.argmax", arg_samples, _ref_arg(np.argmax),
               formula="i = the index of the largest x (the first on ties);   none (an index)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
        _entry("argmin", "reduce", None, "numpy.argmin", arg_samples, _ref_arg(np.argmin),
               formula="i = the index of the smallest x (the first on ties);   none (an index)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
    ]


def _shape_entries():
    S = shape

    def view_op(name, cls, kernel, samples, ref, **kw):
        return _entry(name, "shape", cls, kernel, samples, ref, **kw, **NO_THREADS)

    return [
        view_op("view", S.View, "numpy view", view_samples,
                lambda x, *s: x.reshape(_shape_arg(s)), error_inputs=bad_calls(
                    ("needs-a-copy", lambda t: (t(3, 4).T, 12), RuntimeError),
                    ("wrong-size", lambda t: (t(3, 4), 5), ValueError))),
        view_op("reshape", S.Reshape, "numpy view (a copy when the strides need one)",
                reshape_samples, lambda x, *s: x.reshape(_shape_arg(s))),
        view_op("view_as", S.View, "numpy view", like_samples,
                lambda x, other: x.reshape(other.shape),
                formula="z = x viewed with other's shape (no copy);   gx = g reshaped back"),
        view_op("reshape_as", S.Reshape, "numpy view (a copy when the strides need one)",
                like_samples, lambda x, other: x.reshape(other.shape),
                formula="z = x reshaped to other's shape;   gx = g reshaped back"),
        view_op("flatten", S.Reshape, "numpy view (a copy when the strides need one)",
                flatten_samples, _ref_flatten, error_inputs=bad_calls(
                    ("start>end", lambda t: (t(2, 3, 4), 2, 1), ValueError)),
                formula="z = x with dims start_dim..end_dim merged;   gx = g reshaped back"),
        view_op("transpose", S.Permute, "numpy view", transpose_samples, _ref_transpose,
                formula="z = x with dims dim0 and dim1 swapped (a view);   gx = g swapped back"),
        view_op("t", S.Permute, "numpy view", t_samples, _ref_transpose,
                formula="z = xᵀ for x of at most 2 dims (a view);   gx = gᵀ"),
        view_op("permute", S.Permute, "numpy view", permute_samples,
                lambda x, *d: np.transpose(x, _shape_arg(d))),
        view_op("movedim", S.Permute, "numpy view", movedim_samples, np.moveaxis,
                formula="z = x with dim source moved to destination (a view);   "
                        "gx = g with the dim moved back"),
        view_op("squeeze", S.View, "numpy view", squeeze_samples, _ref_squeeze,
                formula="z = x without its size-1 dims (all, or the given ones);   "
                        "gx = g reshaped back"),
        view_op("unsqueeze", S.View, "numpy view", unsqueeze_samples, np.expand_dims,
                formula="z = x with a size-1 dim inserted at dim;   gx = g reshaped back"),
        view_op("expand", S.Expand, "numpy view (zero strides)", expand_samples, _ref_expand,
                error_inputs=bad_calls(("not-size1", lambda t: (t(3, 4), 2, 4), ValueError))),
        view_op("expand_as", S.Expand, "numpy view (zero strides)", expand_as_samples,
                lambda x, other: np.broadcast_to(x, other.shape),
                formula="z = x broadcast to other's shape (a view);   gx = sum of g over the "
                        "broadcast dims"),
        view_op("contiguous", S.Contiguous, "numpy.copyto", contiguous_samples,
                np.copy,
                formula="z = x, or a C-contiguous copy when x is not;   gx = g"),
        view_op("clone", S.Contiguous, "numpy.copyto", contiguous_samples, np.array),
        view_op("split", S.Split, "numpy views", split_samples, _ref_split),
        view_op("chunk", S.Split, "numpy views", chunk_samples, _ref_chunk,
                formula="z_k = the k-th piece of ceil(n / chunks) along dim (views);   "
                        "gx = cat(g_k, dim)"),
        view_op("cat", S.Cat, "numpy.concatenate", cat_samples,
                lambda xs, dim=0: np.concatenate(xs, axis=dim), error_inputs=bad_calls(
                    ("mismatched", lambda t: ([t(3, 4), t(2, 3)], 0), ValueError))),
        view_op("stack", S.Cat, "numpy.concatenate", stack_samples,
                lambda xs, dim=0: np.stack(xs, axis=dim),
                formula="z = cat of the inputs, each unsqueezed at dim;   "
                        "g_i = the slice of g belonging to input i"),
        view_op("index", S.Index, "numpy indexing (basic: a view)", index_samples, _ref_index),
        view_op("narrow", S.Index, "numpy view", narrow_samples, _ref_narrow,
                error_inputs=bad_calls(("past-the-end", lambda t: (t(2, 3), 0, 2, 1), IndexError),
                                       ("before-the-start", lambda t: (t(2, 3), 0, -3, 1),
                                        IndexError)),
                formula="z = x[start:start+length] along dim (a view);   "
                        "gx = zeros with g placed at the slice"),
        view_op("index_select", S.Index, "numpy indexing", index_select_samples,
                lambda x, dim, index: x if x.ndim == 0 else np.take(x, index, axis=dim),
                formula="z = x[..., index, ...] along dim;   gx = zeros with g added at index "
                        "(repeats accumulate)"),
        view_op("gather", S.Gather, "numpy.take_along_axis", gather_samples, _ref_gather),
    ]


def _blas_entries():
    B = blas
    blas_threads = {"thread_ulps": BLAS_ULPS,
                    "note": "BLAS-backed: results may differ in the last bits with the "
                            "thread count"}
    return [
        _entry("matmul", "blas", B.MatMul, "blas.gemm / blas.matmul_batched", matmul_samples,
               np.matmul, error_inputs=bad_calls(
                   ("not-aligned", lambda t: (t(3, 4), t(5, 2)), ValueError),
                   ("0-d", lambda t: (t(), t(3)), ValueError)), **blas_threads),
        _entry("mm", "blas", B.MatMul, "blas.gemm", mm_samples, np.matmul, **blas_threads),
        _entry("bmm", "blas", B.MatMul, "blas.matmul_batched", bmm_samples, np.matmul,
               **blas_threads),
        _entry("dot", "blas", B.Dot, "blas.gemm", dot_samples, np.dot, **blas_threads),
    ]


def _linear_entries():
    blas_threads = {"thread_ulps": BLAS_ULPS,
                    "note": "also F.linear / F.linear_relu; BLAS-backed: results may differ "
                            "in the last bits with the thread count"}
    return [
        _entry("linear", "blas", linear.Linear, "blas.gemm + activation.bias_add",
               linear_samples, _ref_linear, **blas_threads),
        _entry("linear_relu", "blas", linear.LinearReLU, "blas.gemm + activation.bias_relu",
               linear_samples, lambda *a: np.maximum(_ref_linear(*a), 0.0), **blas_threads),
    ]


def _distance_entries():
    return [
        _entry("cdist", "distance", distance.Cdist, "distance.cdist", cdist_samples,
               _ref_cdist, op=distance.cdist, thread_ulps=BLAS_ULPS, error_inputs=bad_calls(
                   ("3-d", lambda t: (t(2, 3, 4), t(2, 4)), ValueError),
                   ("columns-differ", lambda t: (t(2, 3), t(2, 4)), ValueError)),
               note="forward bitwise equal under any thread count (a fixed tile grid); the "
                    "backward's GEMMs go through BLAS"),
    ]


def _loss_entries():
    L = loss
    return [
        _entry("cross_entropy", "loss", L.CrossEntropy, "loss.xent_forward",
               classification_samples, _ref_cross_entropy, op=L.cross_entropy,
               error_inputs=bad_calls(
                   ("label-out-of-range", lambda t: (t(3, 4), np.array([0, 4, 1])), ValueError))),
        _entry("multiclass_hinge_loss", "loss", L.MulticlassHinge, "loss.hinge_forward",
               hinge_samples, _ref_hinge, op=L.multiclass_hinge_loss),
        _entry("nll_loss", "loss", None, "shape.gather + elementwise.binary(MUL) + reduce",
               nll_samples, _ref_nll, op=L.nll_loss,
               formula="L_i = −w_{y_i}·logp_{i,y_i} (0 where y_i == ignore_index);   "
                       "g_{i,y_i} = −w_{y_i}·g_i ('mean': g / Σ w_{y_i}), 0 elsewhere"),
        _entry("mse_loss", "loss", L.MSE, "loss.mse_forward", mse_samples, _ref_mse,
               op=L.mse_loss,
               error_inputs=bad_calls(("shapes-differ", lambda t: (t(3, 4), t(4)), ValueError))),
    ]


_TABLE = []


def table():
    """The registry: one ``OpInfo`` per public op, grouped by family (in ``FAMILIES`` order).

    Each record has ``name``, ``family``, ``forward`` and ``vjp`` (formula text), ``kernel``
    and the rest of the ``OpInfo`` fields. Built at the first call and cached.
    """
    if not _TABLE:
        _TABLE.extend(_elementwise_entries() + _activation_entries() + _reduce_entries()
                      + _shape_entries() + _blas_entries() + _linear_entries()
                      + _distance_entries() + _loss_entries())
    return list(_TABLE)


def markdown(only=None):
    """``docs/ops.md``: the registry as one Markdown table per family (or only family
    ``only``); an entry's note follows its kernel."""
    lines = ["# Ops", "",
             ("Generated from `tensorgrad/ops/registry.py` by `tensorgrad ops --markdown`; "
              "do not edit."), "",
             ("g is the upstream gradient, gx the gradient for input x, [cond] is 1 where cond "
              "holds else 0."), ""]
    for family in FAMILIES if only is None else (only,):
        lines += [f"## {family}", "", "| op | forward | vjp | kernel |", "|---|---|---|---|"]
        for e in table():
            if e.family == family:
                kernel = f"`{e.kernel}`" + (f" ({e.note})" if e.note else "")
                cells = [f"`{e.name}`", e.forward, e.vjp, kernel]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
