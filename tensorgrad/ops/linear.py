"""Linear layers as ops: y = x·Wᵀ + b, alone or fused with the ReLU that follows.

Convention (PyTorch's): a linear layer's weight is [out_features, in_features] and
y = x·Wᵀ + b. ``W.T`` is a view that the GEMM kernel reads through BLAS's transpose flag, so
neither the forward nor the backward ever copies the weight:

  linear        y = x·Wᵀ + b                 gx = g·W,   gW = gᵀ·x,   gb = Σ_rows g
  linear_relu   y = max(x·Wᵀ + b, 0)         the same with g replaced by g·[y > 0]

The forward is one GEMM into the output buffer followed by one in-place epilogue pass that
adds the bias (and applies ReLU for linear_relu: the pre-activation is never stored, and the
mask for backward is taken from y). Backward is written with matmul/sum/ReLUBackward, which
are differentiable ops, so double backward works. ``tg.nn.functional`` re-exports both.
"""
import math

from tensorgrad._kernels import activation as AK
from tensorgrad._kernels import blas as BK
from tensorgrad._tensor import _wrap
from tensorgrad.function import Function
from tensorgrad.ops._util import FLOATS, as_tensor
from tensorgrad.ops.activation import ReLUBackward
from tensorgrad.ops.matmul import MatMul
from tensorgrad.ops.reduce import Sum
from tensorgrad.ops.shape import reshape, transpose

__all__ = ["linear", "linear_relu"]


def _gemm_xwt(ctx, x, weight):
    """out = x·Wᵀ (one GEMM, W.T read through the BLAS transpose flag)."""
    xd, wd = x._data, weight._data
    out = ctx.empty((xd.shape[0], wd.shape[0]), xd.dtype)
    if out.size == 0:
        return out                      # nothing to compute (and BLAS wants no empty calls)
    if xd.shape[1] == 0:
        out.fill(0)
    else:
        BK.gemm(xd, wd.T, out)
    return out


def _linear_grads(ctx, g, x, w):
    """gx = g·W, gW = gᵀ·x, gb = Σ_rows g (only those that are needed; a None bias never
    needs one)."""
    nx, nw, nb = ctx.needs_input_grad[:3]
    gx = MatMul.apply(g, w) if nx else None
    gw = MatMul.apply(transpose(g, 0, 1), x) if nw else None
    gb = Sum.apply(g, (0,), False, 1.0) if nb else None
    return gx, gw, gb


class Linear(Function):
    """y = x·Wᵀ + b;   gx = g·W,   gW = gᵀ·x,   gb = Σ_rows g"""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, x, weight, bias):
        out = _gemm_xwt(ctx, x, weight)
        if bias is not None:
            AK.bias_add(out, bias._data)
        ctx.save_for_backward(x, weight)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return _linear_grads(ctx, g, x, w)


class LinearReLU(Function):
    """y = max(x·Wᵀ + b, 0);   gz = g·[y > 0],  gx = gz·W,  gW = gzᵀ·x,  gb = Σ_rows gz"""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, x, weight, bias):
        out = _gemm_xwt(ctx, x, weight)
        if bias is not None:
            AK.bias_relu(out, bias._data)
        else:
            AK.relu_forward(out, out)
        y = _wrap(out)
        ctx.save_for_backward(x, weight, y)   # y > 0 is the ReLU mask
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        return _linear_grads(ctx, ReLUBackward.apply(g, y), x, w)


def _check_linear(x, weight, bias, op):
    x = as_tensor(x, op=op)
    weight = as_tensor(weight, op=op)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D [out_features, in_features], got shape "
                         f"{tuple(weight.shape)}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected input [..., "
                         f"{weight.shape[1]}]; y = x·Wᵀ + b)")
    dt = weight._data.dtype
    if dt not in FLOATS or x._data.dtype != dt:
        raise TypeError(f"{op}: input and weight must have the same float dtype, got "
                        f"{x._data.dtype} and {dt} (convert with .float() or .double())")
    if bias is not None:
        bias = as_tensor(bias, op=op)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"{op}: bias of shape {tuple(bias.shape)} does not match weight "
                             f"of shape {tuple(weight.shape)} (expected ({weight.shape[0]},))")
        if bias._data.dtype != dt:
            raise TypeError(f"{op}: bias dtype {bias._data.dtype} differs from weight dtype "
                            f"{dt}")
        if not bias._data.flags.c_contiguous:
            bias = bias.contiguous()
    return x, weight, bias


def _apply_2d(fn, x, weight, bias):
    """Run a [N, in] Function on inputs of any rank [..., in] (1-D gives 1-D)."""
    if x.ndim == 2:
        return fn.apply(x, weight, bias)
    lead = x.shape[:-1]
    y = fn.apply(reshape(x, (math.prod(lead), x.shape[-1])), weight, bias)
    return reshape(y, lead + (weight.shape[0],))


def linear(x, weight, bias=None):
    """y = x·Wᵀ + b with weight [out_features, in_features] (PyTorch's convention), for x of
    shape [..., in_features]; one GEMM with the bias added in its epilogue."""
    x, weight, bias = _check_linear(x, weight, bias, "linear")
    return _apply_2d(Linear, x, weight, bias)


def linear_relu(x, weight, bias=None):
    """relu(linear(x, weight, bias)) fused: the GEMM output gets bias and ReLU in one pass and
    the pre-activation is never stored. Same values and gradients as the unfused pair."""
    x, weight, bias = _check_linear(x, weight, bias, "linear_relu")
    return _apply_2d(LinearReLU, x, weight, bias)
