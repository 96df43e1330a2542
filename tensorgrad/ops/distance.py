"""Pairwise distances: ``cdist`` under five metrics, and their vector-Jacobian products.

Metrics: ``"euclidean"`` (default) and ``"sqeuclidean"`` (the tiled kernel below),
``"cosine"`` (1 - cos, built from differentiable ops: row normalisation and one matmul),
``"inner_product"`` (x1 @ x2ᵀ, a similarity: larger is nearer) and ``"manhattan"``
(Σ|x1_i - x2_j|, its own tiled kernel ``distance.cdist_manhattan``: no GEMM form exists).

Euclidean:
Forward: the tiled kernel ``_kernels/distance.pyx`` (one GEMM per tile for the -2·p·q term,
squared norms in double, exact recomputation for nearly identical rows, clamp at 0, sqrt);
the output [N, M] is the only large allocation.

Backward: with D the squared distances and G the upstream gradient for D,
    dD/dx1 = 2 (diag(rowsum(G)) x1 - G x2),     dD/dx2 = 2 (diag(colsum(G)) x2 - Gᵀ x1),
two GEMMs and two row sums: never an N×M×D tensor. For Euclidean distances d = sqrt(D),
G = g / (2 d); where d == 0 (coincident points) the derivative does not exist and we use
the subgradient 0, as PyTorch does, so no NaN appears. The backward is written with
tensorgrad ops (and ``EuclidGradScale``, a Function with its own backward), so double
backward works.
"""
import numpy as np

from tensorgrad._kernels import distance as DK
from tensorgrad._runtime import blas_guard
from tensorgrad._tensor import _wrap
from tensorgrad.function import Function
from tensorgrad.ops._util import FLOATS, as_tensor, shape_str
from tensorgrad.ops.elementwise import reciprocal, sqrt
from tensorgrad.ops.matmul import matmul
from tensorgrad.ops.select import clamp, where

__all__ = ["METRICS", "cdist"]

# The metrics of ``cdist`` and of the kNN estimators (tensorgrad.neighbors).
METRICS = ("euclidean", "sqeuclidean", "cosine", "inner_product", "manhattan")

# Largest tile of the cdist kernel (rows of x1 by rows of x2); the kernel splits each axis
# into equal tiles no larger than this. Each tile is one single-threaded GEMM, and wide
# tiles keep it near BLAS peak (x1's block is packed once per tile): at A 500×3072 ·
# B 5000×3072 on the 2-core EPYC, column tiles of 256 / 500 / 1250 / 2500 took
# 95.5 / 90.6 / 89.6 / 88.2 ms. 1280 (four tiles of 1250 there) still balances 2 or 4
# threads; the grid never depends on the thread count, so neither does the result.
CDIST_TILE = (512, 1280)
# Tiles of the Manhattan kernel: a 64×256 double tile and a 256×256 transposed block of x2
# (256 KB in float32) per thread stay in L2.
MANHATTAN_TILE = (64, 256)

class EuclidGradScale(Function):
    """s = g / (2 d) where d > 0, else 0;
    gg = h / (2 d),   gd = -h g / (2 d²) = -2 · scale(scale(h, d) · g, d)   (0 where d = 0)"""

    @staticmethod
    def forward(ctx, g, d):
        dd = d._data
        gd = np.ascontiguousarray(g._data, dtype=dd.dtype)
        out = ctx.empty(dd.shape, dd.dtype)
        DK.euclid_grad_scale(gd, np.ascontiguousarray(dd), out)
        ctx.save_for_backward(g, d)
        return _wrap(out)

    @staticmethod
    def backward(ctx, h):
        g, d = ctx.saved_tensors
        s = EuclidGradScale.apply(h, d)
        gg = s if ctx.needs_input_grad[0] else None
        gd = EuclidGradScale.apply(s * g, d) * -2.0 if ctx.needs_input_grad[1] else None
        return gg, gd


class Cdist(Function):
    """D = ||x1_i - x2_j||² (squared) or d = sqrt(D);
    G = g (squared) or g / (2 d) (0 where d = 0);
    gx1 = 2 (rowsum(G) x1 - G x2),   gx2 = 2 (colsum(G) x2 - Gᵀ x1)"""

    @staticmethod
    def forward(ctx, x1, x2, squared):
        a = np.ascontiguousarray(x1._data)   # copies only non-contiguous views
        b = np.ascontiguousarray(x2._data)
        out = ctx.empty((a.shape[0], b.shape[0]), a.dtype)
        with blas_guard(a.shape[0], b.shape[0], a.shape[1]):
            DK.cdist(a, b, out, squared, CDIST_TILE[0], CDIST_TILE[1])
        res = _wrap(out)
        ctx.meta = squared
        ctx.save_for_backward(x1, x2, None if squared else res)
        return res

    @staticmethod
    def backward(ctx, g):
        x1, x2, d = ctx.saved_tensors
        G = g if ctx.meta else EuclidGradScale.apply(g, d)
        gx1 = gx2 = None
        if ctx.needs_input_grad[0]:
            gx1 = (G.sum(1, keepdim=True) * x1 - G @ x2) * 2.0
        if ctx.needs_input_grad[1]:
            gx2 = (G.sum(0).unsqueeze(1) * x2 - G.T @ x1) * 2.0
        return gx1, gx2, None


class SignContract(Function):
    """out_i = Σ_j g_ij sign(a_i - b_j)  (per feature; sign(0) = 0);
    gg = SignDot(h, a, b),   ga = gb = 0 (sign is piecewise constant)"""

    @staticmethod
    def forward(ctx, g, a, b):
        ad, bd = np.ascontiguousarray(a._data), np.ascontiguousarray(b._data)
        gd = np.ascontiguousarray(g._data, dtype=ad.dtype)
        out = ctx.empty(ad.shape, ad.dtype)
        DK.sign_contract(gd, ad, bd, out)
        ctx.save_for_backward(a, b)
        return _wrap(out)

    @staticmethod
    def backward(ctx, h):
        a, b = ctx.saved_tensors
        gg = SignDot.apply(h, a, b) if ctx.needs_input_grad[0] else None
        return gg, None, None


class SignDot(Function):
    """out_ij = Σ_t h_it sign(a_it - b_jt)  (sign(0) = 0);
    gh = SignContract(G, a, b),   ga = gb = 0"""

    @staticmethod
    def forward(ctx, h, a, b):
        ad, bd = np.ascontiguousarray(a._data), np.ascontiguousarray(b._data)
        hd = np.ascontiguousarray(h._data, dtype=ad.dtype)
        out = ctx.empty((ad.shape[0], bd.shape[0]), ad.dtype)
        DK.sign_dot(hd, ad, bd, out)
        ctx.save_for_backward(a, b)
        return _wrap(out)

    @staticmethod
    def backward(ctx, G):
        a, b = ctx.saved_tensors
        gh = SignContract.apply(G, a, b) if ctx.needs_input_grad[0] else None
        return gh, None, None


class CdistManhattan(Function):
    """d = Σ_t |x1_it - x2_jt|;
    gx1_i = Σ_j g_ij sign(x1_i - x2_j),   gx2_j = Σ_i g_ij sign(x2_j - x1_i)   (sign(0) = 0)"""

    @staticmethod
    def forward(ctx, x1, x2):
        a = np.ascontiguousarray(x1._data)
        b = np.ascontiguousarray(x2._data)
        out = ctx.empty((a.shape[0], b.shape[0]), a.dtype)
        DK.cdist_manhattan(a, b, out, MANHATTAN_TILE[0], MANHATTAN_TILE[1])
        ctx.save_for_backward(x1, x2)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x1, x2 = ctx.saved_tensors
        gx1 = SignContract.apply(g, x1, x2) if ctx.needs_input_grad[0] else None
        gx2 = SignContract.apply(g.T, x2, x1) if ctx.needs_input_grad[1] else None
        return gx1, gx2


def _unit_rows(x):
    """x_i / ||x_i|| (a zero row stays 0, with gradient 0), from differentiable ops."""
    n2 = (x * x).sum(1, keepdim=True)
    tiny = float(np.finfo(x._data.dtype).tiny)
    inv = where(n2._data > 0, reciprocal(sqrt(clamp(n2, min=tiny))), 0.0)
    return x * inv


def _check_metric(metric, squared, op):
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"{op}: metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if squared and metric not in ("euclidean", "sqeuclidean"):
        raise ValueError(f"{op}: squared=True applies to the Euclidean distance only, got "
                         f"metric={metric!r}")
    return "sqeuclidean" if squared else metric


def cdist(x1, x2, squared=False, metric="euclidean"):
    """Distances between the rows of x1 [N, D] and x2 [M, D]: a Tensor [N, M].

    ``metric``: ``"euclidean"`` (default) ||x1_i - x2_j||; ``"sqeuclidean"`` its square
    (the same as ``squared=True``: cheaper, and smooth at 0); ``"cosine"`` 1 - cos(x1_i,
    x2_j) clipped to [0, 2], 1 when either row is zero (scikit-learn's convention);
    ``"inner_product"`` the inner products x1_i · x2_j themselves (a similarity: larger
    means nearer, so the kNN estimators rank it largest first); ``"manhattan"``
    Σ_t |x1_it - x2_jt|. Differentiable w.r.t. both inputs, twice; where a derivative does
    not exist the subgradient 0 is used (Euclidean at zero distance, Manhattan where
    coordinates coincide, cosine at a zero row). Both inputs must be 2-D with the same
    number of columns and the same float dtype.
    """
    x1 = as_tensor(x1, op="cdist")
    x2 = as_tensor(x2, op="cdist")
    if x1.ndim != 2 or x2.ndim != 2:
        raise ValueError(f"cdist: expected 2-D inputs [N, D] and [M, D], got shapes "
                         f"{shape_str(x1.shape, x2.shape)}")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"cdist: inputs need the same number of columns, got shapes "
                         f"{shape_str(x1.shape, x2.shape)}")
    d1, d2 = x1._data.dtype, x2._data.dtype
    if d1 != d2 or d1 not in FLOATS:
        raise TypeError(f"cdist: inputs need the same float dtype (float32 or float64), got "
                        f"{d1} and {d2} for shapes {shape_str(x1.shape, x2.shape)}")
    metric = _check_metric(metric, squared, "cdist")
    if metric in ("euclidean", "sqeuclidean"):
        return Cdist.apply(x1, x2, metric == "sqeuclidean")
    if metric == "manhattan":
        return CdistManhattan.apply(x1, x2)
    if metric == "inner_product":
        return matmul(x1, x2.T)
    return clamp(1.0 - matmul(_unit_rows(x1), _unit_rows(x2).T), 0.0, 2.0)
