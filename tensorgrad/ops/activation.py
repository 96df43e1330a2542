"""Activations: ReLU, sigmoid, tanh, softmax, log_softmax.

Each backward is a fused kernel wrapped in its own Function (``ReLUBackward`` ...), whose
backward is again made of ops, so ``create_graph=True`` works through every activation.
ReLU never forms its (diagonal) Jacobian: its backward is a mask taken from the saved output.
"""
import numpy as np

from tensorgrad._kernels import activation as AK
from tensorgrad._kernels import reduce as RK
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function, dispatch
from tensorgrad.ops._util import FLOATS, as_tensor, normalize_dim
from tensorgrad.ops.cast import cast
from tensorgrad.ops.elementwise import exp, mul, neg, sub
from tensorgrad.ops.reduce import sum as _sum

__all__ = ["log_softmax", "relu", "sigmoid", "softmax", "tanh"]


def _kernel_out(ctx, kernel, x, *more):
    """kernel(x, *more, out) into a new output buffer (during replay: the old one)."""
    out = ctx.empty(x._data.shape, x._data.dtype)
    kernel(x._data, *[t._data for t in more], out)
    return _wrap(out)


def _float(x, op):
    x = as_tensor(x, op=op)
    if x._data.dtype not in FLOATS:
        x = cast(x, np.float32)
    return x


class ReLU(Function):
    """y = max(x, 0);   gx = g * (y > 0)   (the gradient at x == 0 is 0)"""
    tape_forward = True
    tape_backward = True
    kernel = staticmethod(AK.relu_forward)

    @staticmethod
    def forward(ctx, x):
        y = _kernel_out(ctx, ReLU.kernel, x)
        ctx.save_for_backward(y)     # the output is enough: the mask is y > 0
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return dispatch(ReLUBackward, _fused_direct, g, y)


class ReLUBackward(Function):
    """gx = g * (y > 0): linear in g, so its backward w.r.t. g is itself; 0 a.e. w.r.t. y."""
    tape_forward = True
    tape_backward = True
    kernel = staticmethod(AK.relu_backward)

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(y)
        return _kernel_out(ctx, ReLUBackward.kernel, g, y)

    @staticmethod
    def backward(ctx, gg):
        (y,) = ctx.saved_tensors
        return dispatch(ReLUBackward, _fused_direct, gg, y), None


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x));   gx = g * y * (1 - y)"""
    tape_forward = True
    tape_backward = True
    kernel = staticmethod(AK.sigmoid_forward)

    @staticmethod
    def forward(ctx, x):
        y = _kernel_out(ctx, Sigmoid.kernel, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return dispatch(SigmoidBackward, _fused_direct, g, y)


class SigmoidBackward(Function):
    """z = g * y * (1 - y);   gg = z-shaped: dz/dg = y(1-y),  dz/dy = g (1 - 2y)"""
    tape_forward = True
    tape_backward = True
    kernel = staticmethod(AK.sigmoid_backward)

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return _kernel_out(ctx, SigmoidBackward.kernel, g, y)

    @staticmethod
    def backward(ctx, gz):
        g, y = ctx.saved_tensors
        ng, ny = ctx.needs_input_grad
        dg = dispatch(SigmoidBackward, _fused_direct, gz, y) if ng else None
        dy = mul(mul(gz, g), sub(1.0, mul(y, 2.0))) if ny else None
        return dg, dy


class Tanh(Function):
    """y = tanh(x);   gx = g * (1 - y²)"""
    tape_forward = True
    tape_backward = True
    kernel = staticmethod(AK.tanh_forward)

    @staticmethod
    def forward(ctx, x):
        y = _kernel_out(ctx, Tanh.kernel, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return dispatch(TanhBackward, _fused_direct, g, y)


class TanhBackward(Function):
    """z = g * (1 - y²);   dz/dg = 1 - y²,   dz/dy = -2 g y"""
    tape_forward = True
    tape_backward = True
    kernel = staticmethod(AK.tanh_backward)

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return _kernel_out(ctx, TanhBackward.kernel, g, y)

    @staticmethod
    def backward(ctx, gz):
        g, y = ctx.saved_tensors
        ng, ny = ctx.needs_input_grad
        dg = dispatch(TanhBackward, _fused_direct, gz, y) if ng else None
        dy = mul(mul(gz, g), mul(y, -2.0)) if ny else None
        return dg, dy


def _as3d(shape, dim):
    """View a C-contiguous array as [A, B, C] with B the reduced axis."""
    if not shape:
        return (1, 1, 1)        # a 0-d tensor is its own one-element dim 0
    a = int(np.prod(shape[:dim], dtype=np.int64))
    c = int(np.prod(shape[dim + 1:], dtype=np.int64))
    return (a, shape[dim], c)


def _contig(x):
    d = x._data
    return d if d.flags.c_contiguous else np.ascontiguousarray(d)


def _along_dim(ctx, kernel, x, dim):
    """out = kernel(x) along ``dim`` (a forward [A, B, C] kernel)."""
    d = _contig(x)
    out = ctx.empty(d.shape, d.dtype)
    s3 = _as3d(d.shape, dim)
    kernel(d.reshape(s3), out.reshape(s3))
    ctx.meta = dim
    return _wrap(out)


def _along_dim_backward(ctx, kernel, g, y, dim):
    """out = kernel(g, y) along ``dim`` (a fused backward kernel); saves g and y."""
    gd = _contig(g)
    out = ctx.empty(gd.shape, gd.dtype)
    s3 = _as3d(gd.shape, dim)
    kernel(gd.reshape(s3), y._data.reshape(s3), out.reshape(s3))
    ctx.save_for_backward(g, y)
    ctx.meta = dim
    return _wrap(out)


class Softmax(Function):
    """y = exp(x - logsumexp(x));   gx = y * (g - sum(g * y))   along ``dim``"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, dim):
        y = _along_dim(ctx, RK.softmax_mid, x, dim)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return SoftmaxBackward.apply(g, y, ctx.meta), None


class SoftmaxBackward(Function):
    """z = y * (g - s), s = sum_d(g*y);
    dz/dg: y*(gz - sum(gz*y));   dz/dy: gz*(g - s) - g*sum(gz*y)"""
    tape_backward = True

    @staticmethod
    def forward(ctx, g, y, dim):
        return _along_dim_backward(ctx, RK.softmax_backward_mid, g, y, dim)

    @staticmethod
    def backward(ctx, gz):
        g, y = ctx.saved_tensors
        dim = ctx.meta
        ng, ny, _ = ctx.needs_input_grad
        dg = SoftmaxBackward.apply(gz, y, dim) if ng else None
        dy = None
        if ny:
            s = _sum(mul(g, y), dim, keepdim=True)
            t = _sum(mul(gz, y), dim, keepdim=True)
            dy = sub(mul(gz, sub(g, s)), mul(g, t))
        return dg, dy, None


class LogSoftmax(Function):
    """y = x - logsumexp(x);   gx = g - exp(y) * sum(g)   along ``dim``"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, dim):
        y = _along_dim(ctx, RK.log_softmax_mid, x, dim)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return LogSoftmaxBackward.apply(g, y, ctx.meta), None


class LogSoftmaxBackward(Function):
    """z = g - exp(y) * sum_d(g);
    dz/dg: gz - sum_d(gz * exp(y));   dz/dy: -gz * exp(y) * sum_d(g)"""
    tape_backward = True

    @staticmethod
    def forward(ctx, g, y, dim):
        return _along_dim_backward(ctx, RK.log_softmax_backward_mid, g, y, dim)

    @staticmethod
    def backward(ctx, gz):
        g, y = ctx.saved_tensors
        dim = ctx.meta
        ng, ny, _ = ctx.needs_input_grad
        p = exp(y)
        dg = sub(gz, _sum(mul(gz, p), dim, keepdim=True)) if ng else None
        dy = neg(mul(mul(gz, p), _sum(g, dim, keepdim=True))) if ny else None
        return dg, dy, None


def _activation_direct(cls, x):
    """``cls.forward``'s values without a node (x converted to a float Tensor first)."""
    if not isinstance(x, Tensor) or x._data.dtype not in FLOATS:
        x = _float(x, cls.__name__.lower())
    xd = x._data
    out = np.empty(xd.shape, xd.dtype)
    cls.kernel(xd, out)
    return _wrap(out)


def _fused_direct(cls, g, y):
    """A fused backward ``cls``'s values without a node: ``cls.kernel(g, y)``."""
    gd = g._data
    out = np.empty(gd.shape, gd.dtype)
    cls.kernel(gd, y._data, out)
    return _wrap(out)


def relu(x):
    """max(x, 0) elementwise; gradient mask y > 0 (0 at x == 0)."""
    return dispatch(ReLU, _activation_direct, x)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    return dispatch(Sigmoid, _activation_direct, x)


def tanh(x):
    """The hyperbolic tangent elementwise.  y = tanh(x);  gx = g * (1 - y²)"""
    return dispatch(Tanh, _activation_direct, x)


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim`` (numerically stable)."""
    x = _float(x, "softmax")
    return Softmax.apply(x, normalize_dim(dim, x.ndim, "softmax"))


def log_softmax(x, dim=-1):
    """x - logsumexp(x) along ``dim`` (numerically stable)."""
    x = _float(x, "log_softmax")
    return LogSoftmax.apply(x, normalize_dim(dim, x.ndim, "log_softmax"))
