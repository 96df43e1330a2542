"""Elementwise arithmetic: forward kernels and vector-Jacobian products side by side.

Gate patterns from the lectures: add distributes the gradient unchanged, mul swaps its
inputs (gx = g*y, gy = g*x), max/maximum route the gradient to the winner. Broadcast inputs
get their gradient summed back to their own shape by ``unbroadcast``.

Float tensors (float32/float64) go through the typed kernels in ``_kernels/elementwise.pyx``;
integer and bool tensors (labels, indices, masks) use numpy and never require grad.
Mixed float dtypes promote to float64, as in PyTorch; a Python number takes the tensor's dtype.
"""
import numbers

import numpy as np

from tensorgrad._kernels import elementwise as EK
from tensorgrad._tensor import Tensor, _check_dtype, _wrap
from tensorgrad.function import Function, _mode, dispatch
from tensorgrad.ops._util import (
    FLOATS,
    as_tensor,
    broadcast_shape,
    result_float,
    shape_str,
    unbroadcast,
)

__all__ = [
    "abs",
    "add",
    "cast",
    "clamp",
    "clip",
    "div",
    "eq",
    "exp",
    "ge",
    "gt",
    "le",
    "log",
    "logical_not",
    "lt",
    "masked_fill",
    "maximum",
    "minimum",
    "mul",
    "ne",
    "neg",
    "pow",
    "reciprocal",
    "sign",
    "sqrt",
    "square",
    "sub",
    "where",
]

_binary = EK.binary
_binary_scalar = EK.binary_scalar
_unary = EK.unary
_NUM = (int, float, np.floating, np.integer)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


# ---------------------------------------------------------------------------------------------
# forward helpers
# ---------------------------------------------------------------------------------------------
def _binary_forward(ctx, code, x, y):
    """out = x (code) y where at least one of x, y is a float Tensor and the other a Tensor
    of the same dtype or a Python number."""
    if type(y) is not Tensor and not isinstance(y, Tensor):
        out = ctx.empty(x._data.shape, x._data.dtype)
        _binary_scalar(code, x._data, float(y), out, False)
    elif not isinstance(x, Tensor):
        out = ctx.empty(y._data.shape, y._data.dtype)
        _binary_scalar(code, y._data, float(x), out, True)
    else:
        xs = x._data.shape
        ys = y._data.shape
        shape = xs if xs == ys else broadcast_shape(xs, ys, ctx.fn.__name__.lower())
        out = ctx.empty(shape, x._data.dtype)
        _binary(code, x._data, y._data, out)
    return _wrap(out)


def _save_operands(ctx, x, y):
    """Save the Tensor operands for backward (versions checked); keep numbers as constants."""
    ctx.save_for_backward(x if isinstance(x, Tensor) else None,
                          y if isinstance(y, Tensor) else None)
    ctx.meta = (x, y)


def _operands(ctx):
    """(x, y) as saved by _save_operands: Tensors, or the Python numbers they were."""
    x, y = ctx.saved_tensors
    return (ctx.meta[0] if x is None else x), (ctx.meta[1] if y is None else y)


def _shape(v):
    return v.shape if isinstance(v, Tensor) else ()


class Add(Function):
    """z = x + y;   gx = g,   gy = g   (summed back over broadcast dims)"""
    code = EK.ADD

    @staticmethod
    def forward(ctx, x, y):
        ctx.meta = (_shape(x), _shape(y))
        return _binary_forward(ctx, EK.ADD, x, y)

    @staticmethod
    def backward(ctx, g):
        sx, sy = ctx.meta
        nx, ny = ctx.needs_input_grad
        return (unbroadcast(g, sx) if nx else None, unbroadcast(g, sy) if ny else None)


class Sub(Function):
    """z = x - y;   gx = g,   gy = -g"""
    code = EK.SUB

    @staticmethod
    def forward(ctx, x, y):
        ctx.meta = (_shape(x), _shape(y))
        return _binary_forward(ctx, EK.SUB, x, y)

    @staticmethod
    def backward(ctx, g):
        sx, sy = ctx.meta
        nx, ny = ctx.needs_input_grad
        return (unbroadcast(g, sx) if nx else None, unbroadcast(neg(g), sy) if ny else None)


class Mul(Function):
    """z = x * y;   gx = g * y,   gy = g * x   (the swap gate)"""
    code = EK.MUL

    @staticmethod
    def forward(ctx, x, y):
        _save_operands(ctx, x, y)
        return _binary_forward(ctx, EK.MUL, x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = _operands(ctx)
        nx, ny = ctx.needs_input_grad
        gx = unbroadcast(mul(g, y), x.shape) if nx else None
        gy = unbroadcast(mul(g, x), y.shape) if ny else None
        return gx, gy


class Div(Function):
    """z = x / y;   gx = g / y,   gy = -g * x / y**2"""
    code = EK.DIV

    @staticmethod
    def forward(ctx, x, y):
        _save_operands(ctx, x, y)
        return _binary_forward(ctx, EK.DIV, x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = _operands(ctx)
        nx, ny = ctx.needs_input_grad
        gx = unbroadcast(div(g, y), x.shape) if nx else None
        gy = unbroadcast(neg(div(mul(g, x), mul(y, y))), y.shape) if ny else None
        return gx, gy


class Pow(Function):
    """z = x ** y;   gx = g * y * x**(y-1),   gy = g * z * log(x)

    As in PyTorch, gx is 0 where y == 0, and gy is 0 where x == 0 and y >= 0 (instead of
    the nan of 0 * inf).
    """
    code = EK.POW

    @staticmethod
    def forward(ctx, x, y):
        ctx.meta = (x, y)
        out = _binary_forward(ctx, EK.POW, x, y)
        ctx.save_for_backward(x if isinstance(x, Tensor) else None,
                              y if isinstance(y, Tensor) else None, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, z = ctx.saved_tensors
        nx, ny = ctx.needs_input_grad
        gx = gy = None
        if nx:
            if y is None:
                p = ctx.meta[1]
                gx = mul(g, mul(pow(x, p - 1), p)) if p != 0 else mul(g, 0.0)
            else:
                # base 1 where x == 0 and y == 0, so y * x**(y-1) is 0 there instead of
                # 0 * inf; elsewhere the formula is kept whole (also at y == 0, x != 0), so
                # its derivative in y, x**(y-1) (1 + y log x), stays right for double backward
                xs = where(eq(y, 0.0), where(eq(x, 0.0), 1.0, x), x)
                gx = unbroadcast(mul(g, mul(y, pow(xs, sub(y, 1.0)))), x.shape)
        if ny:
            xv = x if x is not None else ctx.meta[0]
            if isinstance(xv, Tensor):
                logx = log(where(eq(xv, 0.0), 1.0, xv))      # log taken as 0 where x == 0
            else:
                logx = float(np.log(xv)) if xv != 0 else 0.0
            gy = unbroadcast(mul(mul(g, z), logx), y.shape)
        return gx, gy


def _win_mask(x, y, code):
    """1 where x wins, 0.5 on ties, 0 where y wins (a constant: carries no gradient)."""
    xd = x._data if isinstance(x, Tensor) else x
    yd = y._data if isinstance(y, Tensor) else y
    dt = (x if isinstance(x, Tensor) else y)._data.dtype
    win = np.greater(xd, yd) if code == EK.MAXIMUM else np.less(xd, yd)
    return _wrap(np.asarray(np.where(np.equal(xd, yd), 0.5, win), dtype=dt))


class _MinMax(Function):
    """z = max(x, y) (or min);   gx = g * [x wins],   gy = g * [y wins].

    Ties split the gradient evenly (0.5 each), as PyTorch's maximum/minimum do, so the
    gradient stays the average of the two one-sided derivatives.
    """
    code = None

    @classmethod
    def forward(cls, ctx, x, y):
        _save_operands(ctx, x, y)
        return _binary_forward(ctx, cls.code, x, y)

    @classmethod
    def backward(cls, ctx, g):
        x, y = _operands(ctx)
        m = _win_mask(x, y, cls.code)
        nx, ny = ctx.needs_input_grad
        gx = unbroadcast(mul(g, m), x.shape) if nx else None
        gy = unbroadcast(mul(g, rsub_scalar(m, 1.0)), y.shape) if ny else None
        return gx, gy


class Maximum(_MinMax):
    code = EK.MAXIMUM


class Minimum(_MinMax):
    code = EK.MINIMUM


def rsub_scalar(t, s):
    """s - t for a Python number s."""
    return Sub.apply(s, t) if t._requires_grad else _wrap(np.asarray(s - t._data))


# ---------------------------------------------------------------------------------------------
# unary
# ---------------------------------------------------------------------------------------------
def _unary_forward(ctx, code, x):
    out = ctx.empty(x._data.shape, x._data.dtype)
    _unary(code, x._data, out)
    return _wrap(out)


class Neg(Function):
    """z = -x;   gx = -g"""
    code = EK.NEG

    @staticmethod
    def forward(ctx, x):
        return _unary_forward(ctx, EK.NEG, x)

    @staticmethod
    def backward(ctx, g):
        return neg(g)


class Exp(Function):
    """z = exp(x);   gx = g * z"""
    code = EK.EXP

    @staticmethod
    def forward(ctx, x):
        z = _unary_forward(ctx, EK.EXP, x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return mul(g, z)


class Log(Function):
    """z = log(x);   gx = g / x"""
    code = EK.LOG

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _unary_forward(ctx, EK.LOG, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return div(g, x)


class Sqrt(Function):
    """z = sqrt(x);   gx = g / (2 z)"""
    code = EK.SQRT

    @staticmethod
    def forward(ctx, x):
        z = _unary_forward(ctx, EK.SQRT, x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return div(g, mul(z, 2.0))


class Square(Function):
    """z = x²;   gx = 2 g x"""
    code = EK.SQUARE

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _unary_forward(ctx, EK.SQUARE, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        gd = g._data
        if not _mode.enabled and gd.shape == x._data.shape and _one_value(gd):
            # g is the expanded gradient of a sum (an L2 penalty, Σ w²): one pass x·(2g)
            # instead of two, the same values (doubling is exact) unless 2g overflows the
            # dtype. Not when recording: double backward needs the path through g.
            g2 = 2.0 * float(gd.flat[0])
            big = float(np.finfo(gd.dtype).max)
            if -big <= g2 <= big:           # (not abs(): this module defines its own)
                return mul(x, g2)
        return mul(g, mul(x, 2.0))


class Reciprocal(Function):
    """z = 1/x;   gx = -g z²"""
    code = EK.RECIPROCAL

    @staticmethod
    def forward(ctx, x):
        z = _unary_forward(ctx, EK.RECIPROCAL, x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return neg(mul(g, mul(z, z)))


class Abs(Function):
    """z = |x|;   gx = g * sign(x)   (0 at x == 0, as in PyTorch)"""
    code = EK.ABS

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _unary_forward(ctx, EK.ABS, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return mul(g, sign(x))


class Clamp(Function):
    """z = min(max(x, lo), hi) (all hi when lo > hi);   gx = g where lo <= x <= hi else 0
    (so 0 everywhere when lo > hi, as in PyTorch)"""

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

        def masked(m, shape):
            return unbroadcast(mul(g, _wrap(np.asarray(m, g._data.dtype))), shape)

        gx = masked((xd >= lo) & (xd <= hi), x.shape) if nx else None
        glo = masked((xd < lo) & (lo <= hi), lo_t.shape) if nlo else None
        ghi = masked((xd > hi) | (lo > hi), hi_t.shape) if nhi else None
        return gx, glo, ghi


class Where(Function):
    """z = where(c, x, y);   gx = where(c, g, 0),   gy = where(c, 0, g)"""

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


class Cast(Function):
    """z = x.astype(dtype);   gx = g.astype(x.dtype)"""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.meta = x._data.dtype
        out = ctx.empty(x._data.shape, dtype)
        out[...] = x._data
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return cast(g, ctx.meta), None


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------
def cast(x, dtype):
    """x converted to ``dtype`` (differentiable between float dtypes; no copy if equal)."""
    dtype = np.dtype(dtype)
    if x._data.dtype == dtype:
        return x
    _check_dtype(dtype, "cast")
    if dtype.kind == "f" and x._data.dtype.kind == "f":
        return Cast.apply(x, dtype)
    return _wrap(x._data.astype(dtype))


_NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
              "pow": np.power, "maximum": np.maximum, "minimum": np.minimum}


def _dispatch(cls, a, b, name):
    """Route a binary op: the fast path is two float Tensors of one dtype, or a float Tensor
    and a Python number; everything else is coerced/promoted first."""
    if isinstance(a, Tensor):
        da = a._data.dtype
        if isinstance(b, Tensor):
            db = b._data.dtype
            if db is da and (da is _F32 or da is _F64):
                if a is b and cls is Mul:
                    return dispatch(Square, _unary_direct, a)
                return dispatch(cls, _binary_direct, a, b)
            if da == db and da in FLOATS:
                return dispatch(cls, _binary_direct, a, b)
        elif isinstance(b, _NUM) and not isinstance(b, (bool, np.bool_)) and da in FLOATS:
            return dispatch(cls, _binary_direct, a, b)
    elif isinstance(b, Tensor) and isinstance(a, _NUM) and not isinstance(a, (bool, np.bool_)) \
            and b._data.dtype in FLOATS:
        return dispatch(cls, _binary_direct, a, b)
    return _promote(cls, a, b, name)


def _binary_direct(cls, a, b):
    """``cls.forward``'s values without a node: a float Tensor and a Tensor of its dtype or
    a number (either side)."""
    if not isinstance(b, Tensor):
        ad = a._data
        out = np.empty(ad.shape, ad.dtype)
        _binary_scalar(cls.code, ad, float(b), out, False)
        return _wrap(out)
    if not isinstance(a, Tensor):
        bd = b._data
        out = np.empty(bd.shape, bd.dtype)
        _binary_scalar(cls.code, bd, float(a), out, True)
        return _wrap(out)
    ad = a._data
    bd = b._data
    shape = ad.shape
    if bd.shape != shape:
        shape = broadcast_shape(shape, bd.shape, cls.__name__.lower())
    out = np.empty(shape, ad.dtype)
    # A broadcast single value (e.g. the expanded gradient of a sum) is applied as a scalar:
    # one contiguous pass instead of the strided loop. Same values.
    if bd.ndim and bd.strides[-1] == 0 and ad.shape == shape and _one_value(bd):
        _binary_scalar(cls.code, ad, float(bd.flat[0]), out, False)
    elif ad.ndim and ad.strides[-1] == 0 and bd.shape == shape and _one_value(ad):
        _binary_scalar(cls.code, bd, float(ad.flat[0]), out, True)
    else:
        _binary(cls.code, ad, bd, out)
    return _wrap(out)


def _one_value(arr):
    """True when every element of ``arr`` is the same memory (all strides 0, size > 1)."""
    return arr.size > 1 and not any(arr.strides)


def _promote(cls, a, b, name):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    a_num = isinstance(a, (numbers.Number, np.generic))
    b_num = isinstance(b, (numbers.Number, np.generic))
    ta = None if a_num else as_tensor(a, op=name)
    tb = None if b_num else as_tensor(b, op=name)
    da = ta._data.dtype if ta is not None else None
    db = tb._data.dtype if tb is not None else None
    if (da is not None and da.kind == "f") or (db is not None and db.kind == "f"):
        if da is not None and da.kind == "f" and db is not None and db.kind == "f":
            dt = result_float(da, db)
        else:
            dt = da if (da is not None and da.kind == "f") else db
        ta = cast(ta, dt) if ta is not None else None
        tb = cast(tb, dt) if tb is not None else None
        x = ta if ta is not None else float(a)
        y = tb if tb is not None else float(b)
        return cls.apply(x, y)
    # integer/bool arithmetic (never differentiable); a float scalar makes the result float32
    xa = ta._data if ta is not None else a
    xb = tb._data if tb is not None else b
    if name == "div" or isinstance(a, float) or isinstance(b, float):
        res = _NP_BINARY[name](np.asarray(xa, np.float32), np.asarray(xb, np.float32))
        return _wrap(np.asarray(res, np.float32))
    try:
        res = _NP_BINARY[name](xa, xb)
    except ValueError:
        raise ValueError(f"{name}: shapes {shape_str(np.shape(xa), np.shape(xb))} cannot be "
                         f"broadcast together") from None
    return _wrap(np.asarray(res))


def add(x, y, alpha=1):
    """x + alpha * y, with numpy broadcasting."""
    if alpha != 1:
        y = mul(y, alpha)
    return _dispatch(Add, x, y, "add")


def sub(x, y, alpha=1):
    """x - alpha * y, with numpy broadcasting."""
    if alpha != 1:
        y = mul(y, alpha)
    return _dispatch(Sub, x, y, "sub")


def mul(x, y):
    """x * y, with numpy broadcasting."""
    return _dispatch(Mul, x, y, "mul")


def div(x, y):
    """x / y (true division), with numpy broadcasting."""
    return _dispatch(Div, x, y, "div")


def pow(x, y):
    """x ** y, with numpy broadcasting (float semantics: negative base, fractional power
    gives nan)."""
    return _dispatch(Pow, x, y, "pow")


def maximum(x, y):
    """Elementwise max; the gradient goes to the larger input (split evenly on ties)."""
    return _dispatch(Maximum, x, y, "maximum")


def minimum(x, y):
    """Elementwise min; the gradient goes to the smaller input (split evenly on ties)."""
    return _dispatch(Minimum, x, y, "minimum")


# unary ops that keep an integer tensor's dtype (numpy's result); the others compute in float32
_INT_UNARY = {Neg: np.negative, Square: np.square, Abs: np.abs}


def _unary_direct(cls, x):
    """``cls.forward``'s values without a node (x converted to a float Tensor first, unless
    the op keeps integers)."""
    if not isinstance(x, Tensor):
        x = as_tensor(x, op=cls.__name__.lower())
    xd = x._data
    if xd.dtype not in FLOATS:
        int_op = _INT_UNARY.get(cls)
        if int_op is not None:
            return _wrap(np.asarray(int_op(xd)))
        xd = xd.astype(np.float32)
    out = np.empty(xd.shape, xd.dtype)
    _unary(cls.code, xd, out)
    return _wrap(out)


def neg(x):
    """-x elementwise.  gx = -g"""
    return dispatch(Neg, _unary_direct, x)


def exp(x):
    """e**x elementwise.  z = exp(x);  gx = g * z"""
    return dispatch(Exp, _unary_direct, x)


def log(x):
    """The natural logarithm elementwise.  gx = g / x"""
    return dispatch(Log, _unary_direct, x)


def sqrt(x):
    """The square root elementwise.  z = sqrt(x);  gx = g / (2 z)"""
    return dispatch(Sqrt, _unary_direct, x)


def square(x):
    """x² elementwise.  gx = 2 g x"""
    return dispatch(Square, _unary_direct, x)


def reciprocal(x):
    """1 / x elementwise.  z = 1/x;  gx = -g z²"""
    return dispatch(Reciprocal, _unary_direct, x)


def abs(x):
    """|x| elementwise.  gx = g * sign(x)  (0 at x == 0, as in PyTorch)"""
    return dispatch(Abs, _unary_direct, x)


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


class Compare(Function):
    """mask = x (op) y: a bool tensor with no gradient. Recorded as a node when an input
    requires grad, so that Graph.forward() recomputes the mask instead of reusing it."""

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
