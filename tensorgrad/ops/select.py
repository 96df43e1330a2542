"""Selection and masks: comparisons, where, masked_fill, clamp.

Comparisons give bool masks that carry no gradient; they are still recorded as nodes when an
input requires grad, so that Graph replay recomputes a mask rather than reusing a stale one.
``where`` routes the gradient to the branch each element came from; ``clamp`` passes it where
the input lies inside the bounds.
"""
import numpy as np

from tensorgrad._kernels import elementwise as EK
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function
from tensorgrad.ops._util import FLOATS, as_tensor, result_float, shape_str, unbroadcast
from tensorgrad.ops.cast import cast

__all__ = ["clamp", "clip", "eq", "ge", "gt", "le", "logical_not", "lt", "masked_fill", "ne",
           "sign", "where"]

_binary = EK.binary
_binary_scalar = EK.binary_scalar


def _shape(v):
    return v.shape if isinstance(v, Tensor) else ()


class Compare(Function):
    """mask = x (op) y: a bool tensor with no gradient. Recorded as a node when an input
    requires grad, so that Graph.forward() recomputes the mask instead of reusing it."""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, y, np_fn):
        xd = x._data if isinstance(x, Tensor) else x
        yd = y._data if isinstance(y, Tensor) else y
        shape = np.broadcast_shapes(np.shape(xd), np.shape(yd))
        out = ctx.empty(shape, np.bool_)
        np_fn(xd, yd, out=out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return None, None, None


def _cmp(np_fn, name):
    def op(x, y):
        if not isinstance(x, Tensor) and not isinstance(y, Tensor):
            raise TypeError(f"{name}: expected at least one Tensor")
        try:
            np.broadcast_shapes(np.shape(x._data if isinstance(x, Tensor) else x),
                                np.shape(y._data if isinstance(y, Tensor) else y))
        except ValueError:
            raise ValueError(f"{name}: shapes {shape_str(_shape(x), _shape(y))} cannot be "
                             f"broadcast together") from None
        return Compare.apply(x, y, np_fn)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} comparison: a bool mask that carries no gradient."
    return op


eq = _cmp(np.equal, "eq")
ne = _cmp(np.not_equal, "ne")
lt = _cmp(np.less, "lt")
le = _cmp(np.less_equal, "le")
gt = _cmp(np.greater, "gt")
ge = _cmp(np.greater_equal, "ge")


class LogicalNot(Function):
    """~mask (no gradient; recorded for replay like the comparisons)."""
    tape_backward = True

    @staticmethod
    def forward(ctx, x):
        out = ctx.empty(x._data.shape, np.bool_)
        np.logical_not(x._data, out=out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return None


def logical_not(x):
    """The elementwise negation of a mask (``~mask``): a bool tensor with no gradient."""
    return LogicalNot.apply(x)


class Clamp(Function):
    """z = min(max(x, lo), hi) (all hi when lo > hi);   gx = g where lo <= x <= hi else 0
    (so 0 everywhere when lo > hi, as in PyTorch)"""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.meta = (lo, hi)
        out = ctx.empty(x._data.shape, x._data.dtype)
        # the kernel applies hi first, then lo: lowering lo to hi makes lo > hi give hi
        EK.clamp(x._data, min(lo, hi), hi, out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        lo, hi = ctx.meta
        return ClampBackward.apply(g, x, lo, hi), None, None


class ClampBackward(Function):
    """gx = g * [lo <= x <= hi]: linear in g (so its own backward is itself), 0 a.e. in x."""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, g, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.meta = (lo, hi)
        out = ctx.empty(g._data.shape, g._data.dtype)
        EK.clamp_mask(x._data, lo, hi, g._data, out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, gg):
        (x,) = ctx.saved_tensors
        lo, hi = ctx.meta
        return ClampBackward.apply(gg, x, lo, hi), None, None, None


class ClampTensor(Function):
    """z = min(max(x, lo), hi) with Tensor bounds (broadcasting; a number bound stays a number);
    gx = g * [lo <= x <= hi],  glo = g * [x < lo],  ghi = g * [x > hi]

    The masks are constants taken from the saved values (so Graph replay refreshes them); x
    keeps the gradient at the boundary, as with number bounds. If lo > hi, z = hi (PyTorch).
    """

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x, lo if isinstance(lo, Tensor) else None,
                              hi if isinstance(hi, Tensor) else None)
        ctx.meta = (lo, hi)
        shape = np.broadcast_shapes(x.shape, _shape(lo), _shape(hi))
        out = ctx.empty(shape, x._data.dtype)
        xd = np.broadcast_to(x._data, shape)
        if isinstance(lo, Tensor):
            _binary(EK.MAXIMUM, xd, lo._data, out)
        else:
            _binary_scalar(EK.MAXIMUM, xd, lo, out, False)
        if isinstance(hi, Tensor):
            _binary(EK.MINIMUM, out, hi._data, out)
        else:
            _binary_scalar(EK.MINIMUM, out, hi, out, False)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x, lo_t, hi_t = ctx.saved_tensors
        lo = ctx.meta[0] if lo_t is None else lo_t._data
        hi = ctx.meta[1] if hi_t is None else hi_t._data
        xd = x._data
        nx, nlo, nhi = ctx.needs_input_grad

        zero = _wrap(np.zeros((), g._data.dtype))

        def masked(m, shape):
            return unbroadcast(where(_wrap(np.asarray(m)), g, zero), shape)


        gx = masked((xd >= lo) & (xd <= hi), x.shape) if nx else None
        glo = masked((xd < lo) & (lo <= hi), lo_t.shape) if nlo else None
        ghi = masked((xd > hi) | (lo > hi), hi_t.shape) if nhi else None
        return gx, glo, ghi


class Where(Function):
    """z = where(c, x, y);   gx = where(c, g, 0),   gy = where(c, 0, g)"""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.save_for_backward(cond)
        ctx.meta = (x.shape, y.shape)
        shape = np.broadcast_shapes(cond.shape, x.shape, y.shape)
        out = ctx.empty(shape, x._data.dtype)
        EK.where(cond._data, x._data, y._data, out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        sx, sy = ctx.meta
        _, nx, ny = ctx.needs_input_grad
        zero = _wrap(np.zeros((), g._data.dtype))
        gx = unbroadcast(where(cond, g, zero), sx) if nx else None
        gy = unbroadcast(where(cond, zero, g), sy) if ny else None
        return None, gx, gy


def sign(x):
    """-1, 0 or 1 (no gradient)."""
    x = as_tensor(x, op="sign")
    return _wrap(np.asarray(np.sign(x._data)))   # ufuncs turn 0-d arrays into scalars


def clamp(x, min=None, max=None):
    """Clip x into [min, max]: z = min(max(x, min), max), so min > max gives max everywhere
    (PyTorch). gx = g where min <= x <= max (boundary included), else 0.

    Bounds may be numbers or Tensors (broadcasting); a Tensor bound gets the gradient where
    it is the value chosen.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    x = as_tensor(x, op="clamp")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor(x, min, max)
    lo = -np.inf if min is None else float(min)
    hi = np.inf if max is None else float(max)
    if x._data.dtype not in FLOATS:
        return _wrap(np.asarray(np.clip(x._data, min, max)))
    return Clamp.apply(x, lo, hi)


def clip(x, min=None, max=None):
    """Alias of ``clamp`` (numpy's and PyTorch's other name): z = min(max(x, min), max);
    gx = g where min <= x <= max, else 0."""
    return clamp(x, min, max)


def _clamp_tensor(x, lo, hi):
    """clamp with at least one Tensor bound: promote, check shapes, then ClampTensor."""
    ts = [t for t in (x, lo, hi) if isinstance(t, Tensor)]
    try:
        np.broadcast_shapes(*(t.shape for t in ts))
    except ValueError:
        raise ValueError(f"clamp: shapes {shape_str(*(t.shape for t in ts))} cannot be "
                         f"broadcast together") from None
    floats = [t._data.dtype for t in ts if t._data.dtype.kind == "f"]
    if not floats:                                  # integer clamp: no gradient, numpy
        vals = [b._data if isinstance(b, Tensor) else b for b in (lo, hi)]
        return _wrap(np.asarray(np.clip(x._data, *vals)))
    dt = np.dtype(np.float64 if any(d == np.float64 for d in floats) else np.float32)
    lo = cast(lo, dt) if isinstance(lo, Tensor) else (-np.inf if lo is None else float(lo))
    hi = cast(hi, dt) if isinstance(hi, Tensor) else (np.inf if hi is None else float(hi))
    return ClampTensor.apply(cast(x, dt), lo, hi)


def where(condition, x, y):
    """Pick x where condition is true, y elsewhere (broadcasting); condition carries no grad."""
    cond = as_tensor(condition, op="where")
    if cond._data.dtype != np.bool_:
        cond = _wrap(cond._data.astype(bool))
    xt = x if isinstance(x, Tensor) else None
    yt = y if isinstance(y, Tensor) else None
    like = xt if xt is not None else yt
    if like is None:
        raise TypeError("where: x or y must be a Tensor")
    x = as_tensor(x, like=like, op="where")
    y = as_tensor(y, like=like, op="where")
    dx, dy = x._data.dtype, y._data.dtype
    if dx.kind == "f" or dy.kind == "f":
        dt = result_float(dx, dy) if dx.kind == "f" and dy.kind == "f" else \
            (dx if dx.kind == "f" else dy)
        x, y = cast(x, dt), cast(y, dt)
        try:
            np.broadcast_shapes(cond.shape, x.shape, y.shape)
        except ValueError:
            raise ValueError(f"where: shapes {shape_str(cond.shape, x.shape, y.shape)} cannot "
                             f"be broadcast together") from None
        return Where.apply(cond, x, y)
    return _wrap(np.where(cond._data, x._data, y._data))


def masked_fill(x, mask, value):
    """x with ``value`` (a number or a 0-d tensor) where the bool ``mask`` (broadcastable to
    x's shape) is true.  z = where(mask, value, x);  gx = g where mask is false, else 0;
    g_value = Σ g over the filled entries."""
    x = as_tensor(x, op="masked_fill")
    m = as_tensor(mask, op="masked_fill")
    if m._data.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {m._data.dtype}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                         f"{value.shape}")
    try:
        ok = np.broadcast_shapes(m.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast to the "
                         f"input's shape {x.shape}")
    value = value if isinstance(value, Tensor) else as_tensor(value, like=x, op="masked_fill")
    return where(m, cast(value, x._data.dtype), x)
