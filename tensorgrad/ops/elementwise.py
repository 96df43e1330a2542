"""Elementwise arithmetic: forward kernels and vector-Jacobian products side by side.

Gate patterns from the lectures: add distributes the gradient unchanged, mul swaps its
inputs (gx = g*y, gy = g*x), max/maximum route the gradient to the winner. Broadcast inputs
get their gradient summed back to their own shape by ``unbroadcast``.

Float tensors (float32/float64) go through the typed kernels in ``_kernels/elementwise.pyx``;
integer and bool tensors (labels, indices, masks) use numpy and never require grad.
How operands of mixed dtypes are promoted is in ``_promote.py``; comparisons, where and clamp
are in ``select.py``.
"""
import numpy as np

from tensorgrad import function as _fn
from tensorgrad._kernels import elementwise as EK
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function, _mode, dispatch
from tensorgrad.ops._promote import route_binary
from tensorgrad.ops._util import FLOATS, as_tensor, broadcast_shape, unbroadcast
from tensorgrad.ops.select import eq, sign, where

__all__ = ["abs", "add", "div", "exp", "log", "maximum", "minimum", "mul", "neg", "pow",
           "reciprocal", "sqrt", "square", "sub"]

_binary = EK.binary
_binary_scalar = EK.binary_scalar
_unary = EK.unary


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
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
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
    tape_forward = True
    tape_backward = True
    code = EK.NEG

    @staticmethod
    def forward(ctx, x):
        return _unary_forward(ctx, EK.NEG, x)

    @staticmethod
    def backward(ctx, g):
        return neg(g)


class Exp(Function):
    """z = exp(x);   gx = g * z"""
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    tape_backward = True
    code = EK.SQUARE

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _unary_forward(ctx, EK.SQUARE, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        gd = g._data
        if not _mode.enabled and gd.shape == x._data.shape and gd.size > 1 \
                and not any(gd.strides):
            # g is one value broadcast (the expanded gradient of a sum: an L2 penalty, Σ w²):
            # one pass x·(2g), not two; the same values, doubling being exact. 2g is an op
            # on g's memory (not a number read from it), so a planned replay recomputes it.
            # Not when recording: double backward needs the path through g. (A Graph plan
            # keeps this path without the overflow test, which reads a value.)
            g2 = mul(_wrap(gd[(0,) * gd.ndim + (Ellipsis,)]), 2.0)
            if _fn._capture is not None or bool(np.isfinite(g2._data)) \
                    or not bool(np.isfinite(gd.flat[0])):
                return mul(x, g2)
        return mul(g, mul(x, 2.0))


class Reciprocal(Function):
    """z = 1/x;   gx = -g z²"""
    tape_forward = True
    tape_backward = True
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
    tape_forward = True
    code = EK.ABS

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _unary_forward(ctx, EK.ABS, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return mul(g, sign(x))


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------
def add(x, y, alpha=1):
    """x + alpha * y, with numpy broadcasting."""
    if alpha != 1:
        y = mul(y, alpha)
    return route_binary(Add, x, y, "add")


def sub(x, y, alpha=1):
    """x - alpha * y, with numpy broadcasting."""
    if alpha != 1:
        y = mul(y, alpha)
    return route_binary(Sub, x, y, "sub")


def mul(x, y):
    """x * y, with numpy broadcasting."""
    if x is y and isinstance(x, Tensor) and x._data.dtype in FLOATS:
        return dispatch(Square, _unary_direct, x)      # x * x: one read of x
    return route_binary(Mul, x, y, "mul")


def div(x, y):
    """x / y (true division), with numpy broadcasting."""
    return route_binary(Div, x, y, "div")


def pow(x, y):
    """x ** y, with numpy broadcasting (float semantics: negative base, fractional power
    gives nan)."""
    return route_binary(Pow, x, y, "pow")


def maximum(x, y):
    """Elementwise max; the gradient goes to the larger input (split evenly on ties)."""
    return route_binary(Maximum, x, y, "maximum")


def minimum(x, y):
    """Elementwise min; the gradient goes to the smaller input (split evenly on ties)."""
    return route_binary(Minimum, x, y, "minimum")


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
