"""Dtype conversion: the op every dtype promotion goes through.

``cast`` between float dtypes is differentiable (the gradient is cast back); to or from an
integer or bool dtype it is a plain numpy conversion with no gradient.
"""
import numpy as np

from tensorgrad._tensor import _check_dtype, _wrap
from tensorgrad.function import Function

__all__ = ["cast"]


class Cast(Function):
    """z = x.astype(dtype);   gx = g.astype(x.dtype)"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.meta = x._data.dtype
        out = ctx.empty(x._data.shape, dtype)
        out[...] = x._data
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return cast(g, ctx.meta), None


def cast(x, dtype):
    """x converted to ``dtype`` (differentiable between float dtypes; no copy if equal)."""
    dtype = np.dtype(dtype)
    if x._data.dtype == dtype:
        return x
    _check_dtype(dtype, "cast")
    if dtype.kind == "f" and x._data.dtype.kind == "f":
        return Cast.apply(x, dtype)
    return _wrap(x._data.astype(dtype))
