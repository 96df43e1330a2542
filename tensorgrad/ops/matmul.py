"""Matrix products through BLAS (``_kernels/blas.pyx``; ``_blas.py`` picks the library).

For y = x·W with x [N×D], W [D×M]:  dL/dx = dL/dy·Wᵀ and dL/dW = xᵀ·dL/dy. The transposes are
views (``.mT``) that the GEMM wrapper passes to BLAS as transpose flags, so backward never
copies a matrix, and never forms the [N·M × N·D] Jacobian (256 GB at N=64, D=M=4096; the two
products need a few MB).
"""
import math

import numpy as np

from tensorgrad._kernels import blas as BK
from tensorgrad._tensor import _wrap
from tensorgrad.function import Function, dispatch
from tensorgrad.ops._util import FLOATS, as_tensor, result_float, shape_str, unbroadcast
from tensorgrad.ops.cast import cast
from tensorgrad.ops.elementwise import mul
from tensorgrad.ops.shape import Permute, _view_of, expand, reshape, squeeze, unsqueeze

__all__ = ["bmm", "dot", "matmul", "mm"]


def _mT(x):
    """The transpose of the last two dims (x has 2 or more) as a view (BLAS reads it with a
    transpose flag)."""
    nd = x._data.ndim
    return dispatch(Permute, _swap_last_two, x, (*range(nd - 2), nd - 1, nd - 2))


def _swap_last_two(cls, x, perm):
    """``Permute.forward``'s view for that perm, without a node."""
    return _view_of(x._data.swapaxes(-1, -2), x)


class MatMul(Function):
    """z = a @ b  (2-D or batched 3-D);   ga = g @ bᵀ,   gb = aᵀ @ g"""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ad, bd = a._data, b._data
        ctx.save_for_backward(a, b)
        if ad.ndim == 2:
            out = ctx.empty((ad.shape[0], bd.shape[1]), ad.dtype)
            BK.gemm(ad, bd, out)
        else:
            batch = ad.shape[0] if ad.shape[0] != 1 else bd.shape[0]
            out = ctx.empty((batch, ad.shape[1], bd.shape[2]), ad.dtype)
            a3 = np.broadcast_to(ad, (batch,) + ad.shape[1:])
            b3 = np.broadcast_to(bd, (batch,) + bd.shape[1:])
            BK.matmul_batched(a3, b3, out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(MatMul.apply(g, _mT(b)), a.shape) if na else None
        gb = unbroadcast(MatMul.apply(_mT(a), g), b.shape) if nb else None
        return ga, gb


class Dot(Function):
    """z = a · b for vectors;   ga = g * b,   gb = g * a"""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        out = ctx.empty((), a._data.dtype)
        BK.gemm(a._data.reshape(1, -1), b._data.reshape(-1, 1), out.reshape(1, 1))
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (mul(g, b) if na else None), (mul(g, a) if nb else None)


def matmul(a, b):
    """Matrix product with PyTorch/numpy semantics: 1-D operands are promoted (and the added
    dimension removed), 3-D and higher are batched with broadcasting batch dimensions."""
    a = as_tensor(a, op="matmul")
    b = as_tensor(b, op="matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{shape_str(a.shape, b.shape)}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {shape_str(a.shape, b.shape)} are not aligned "
                         f"(inner dimensions {a.shape[-1]} and "
                         f"{b.shape[-2 if b.ndim > 1 else 0]} differ)")
    da, db = a._data.dtype, b._data.dtype
    if da != db or da not in FLOATS:
        if da.kind != "f" and db.kind != "f":
            return _int_matmul(a, b)
        dt = result_float(da if da.kind == "f" else np.dtype(np.float32),
                          db if db.kind == "f" else np.dtype(np.float32))
        a, b = cast(a, dt), cast(b, dt)
    if a.ndim == 2 and b.ndim == 2:
        return MatMul.apply(a, b)
    if a.ndim == 1 and b.ndim == 1:
        return Dot.apply(a, b)
    if a.ndim == 1:
        return squeeze(matmul(unsqueeze(a, 0), b), -2)
    if b.ndim == 1:
        return squeeze(matmul(a, unsqueeze(b, 1)), -1)
    if b.ndim == 2:
        # [..., M, K] @ [K, N]: one GEMM over the stacked rows
        lead = a.shape[:-1]
        y = MatMul.apply(reshape(a, (math.prod(lead), a.shape[-1])), b)
        return reshape(y, lead + (b.shape[1],))
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {shape_str(a.shape, b.shape)} "
                         f"cannot be broadcast together") from None
    a3 = _batch3(a, batch)
    b3 = _batch3(b, batch)
    y = MatMul.apply(a3, b3)
    return reshape(y, batch + y.shape[-2:])


def _int_matmul(a, b):
    """Integer (or bool) @ integer: numpy's exact product and result dtype; no gradient
    (BLAS is float-only, and integer tensors never require grad)."""
    try:
        return _wrap(np.asarray(np.matmul(a._data, b._data)))
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {shape_str(a.shape, b.shape)} "
                         f"cannot be broadcast together") from None


def _batch3(x, batch):
    """[..., M, K] -> [B, M, K] (B = prod(batch)); a broadcast batch of one stays 1."""
    if x.ndim == 2:
        return reshape(x, (1,) + x.shape)
    if x.shape[:-2] != batch:
        if all(s == 1 for s in x.shape[:-2]):
            return reshape(x, (1,) + x.shape[-2:])
        x = expand(x, batch + x.shape[-2:])
    # the batch size spelled out: -1 is ambiguous when a matrix dim is 0
    return reshape(x, (math.prod(x.shape[:-2]),) + x.shape[-2:])


def mm(a, b):
    """The matrix product of two 2-D tensors (``matmul`` restricted to 2-D)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: expects 2-D tensors, got shapes {shape_str(a.shape, b.shape)}")
    return matmul(a, b)


def bmm(a, b):
    """Batched matrix product of [B, N, K] and [B, K, M] tensors (``matmul`` restricted to
    3-D)."""
    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(f"bmm: expects 3-D tensors, got shapes {shape_str(a.shape, b.shape)}")
    return matmul(a, b)


def dot(a, b):
    """The inner product of two 1-D tensors (a 0-d tensor).  ga = g * b,  gb = g * a"""
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"dot: expects 1-D tensors, got shapes {shape_str(a.shape, b.shape)}")
    return matmul(a, b)
