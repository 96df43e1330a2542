"""Indexing ops: ``x[key]``, narrow, index_select, gather, and their gradients.

Basic indexing (ints, slices, None, Ellipsis) returns a numpy view that shares memory and the
version counter with its base, as in PyTorch; advanced indexing (integer arrays, masks)
copies. The gradient scatters back into zeros of the input's shape, and repeated indices
accumulate (``np.add.at``); each scatter is itself an op whose backward gathers again, so
double backward works.
"""
import numpy as np

from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function
from tensorgrad.ops._util import normalize_dim
from tensorgrad.ops.shape import _view_of, reshape

__all__ = ["gather", "index", "index_select", "narrow"]


def _norm_key(key):
    """Replace Tensors in an index by their arrays."""
    if isinstance(key, tuple):
        return tuple(k._data if isinstance(k, Tensor) else k for k in key)
    if isinstance(key, Tensor):
        return key._data
    if isinstance(key, list):
        return np.asarray(key)
    return key


def _is_basic(key):
    ks = key if isinstance(key, tuple) else (key,)
    for k in ks:
        if not (k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer))):
            return False
    return True


class Index(Function):
    """z = x[key];   gx = zeros with g added at the indexed positions (repeats accumulate)"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, key):
        if isinstance(key, Tensor):     # a mask/index tensor is an argument, so that Graph
            key = key._data             # replay sees its recomputed value
        ctx.meta = (key, x.shape)
        try:
            r = x._data[key]
        except IndexError as e:
            raise IndexError(f"index: {e} (tensor of shape {x.shape})") from None
        if _is_basic(key):
            if not isinstance(r, np.ndarray):
                # an all-integer key makes numpy return a scalar; a trailing Ellipsis gives
                # the 0-d view instead (x[i, j] is a view, as in PyTorch)
                r = x._data[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
            return _view_of(r, x)
        r = np.asarray(r)
        # a copy already; make it C-contiguous (np.ascontiguousarray would turn 0-d into 1-d)
        return _wrap(r if r.flags.c_contiguous else np.ascontiguousarray(r))

    @staticmethod
    def backward(ctx, g):
        return IndexBackward.apply(g, *ctx.meta), None


class IndexBackward(Function):
    """gx = zeros(shape); gx[key] += g  — linear in g; its backward is g2[key]."""
    tape_backward = True

    @staticmethod
    def forward(ctx, g, key, shape):
        ctx.meta = key
        out = ctx.empty(shape, g._data.dtype)
        out.fill(0)
        if _is_basic(key):
            out[key] += g._data
        else:
            np.add.at(out, key, g._data)
        return _wrap(out)

    @staticmethod
    def backward(ctx, gg):
        return index(gg, ctx.meta), None, None


def index(x, key):
    """x[key] with slices, ints, None, Ellipsis, bool masks and integer arrays."""
    arg = key if isinstance(key, Tensor) else None
    key = _norm_key(key)
    if isinstance(key, np.ndarray) and key.dtype.kind not in "iub":
        raise IndexError(f"index: tensors used as indices must be integer or bool, got "
                         f"{key.dtype}")
    return Index.apply(x, arg if arg is not None else key)


def narrow(x, dim, start, length):
    """The slice ``start:start + length`` along ``dim`` (a view; a negative start counts from
    the end, as in PyTorch).  gx = g placed in zeros."""
    d = normalize_dim(dim, x.ndim, "narrow")
    n = x.shape[d]
    begin = start + n if start < 0 else start
    if not -n <= start <= n or length < 0 or begin + length > n:
        raise IndexError(f"narrow: start {start} and length {length} are out of range for "
                         f"dim {d} of size {n} (shape {x.shape}); need -{n} <= start <= {n} "
                         f"and start + length <= {n} after wrapping a negative start")
    key = (slice(None),) * d + (slice(begin, begin + length),)
    return Index.apply(x, key)


def index_select(x, dim, index):
    """The entries of x at the int ``index`` (1-D, or one number) along ``dim``, each in
    [0, size): z has x's shape with dim ``dim`` of size len(index) (a copy).
    z = x[..., index, ...];  gx = zeros with g added at index (repeated indices accumulate)."""
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu" or idx.ndim > 1:
        raise TypeError(f"index_select: index must be a 1-D integer tensor, got shape "
                        f"{idx.shape} and dtype {idx.dtype}")
    d = normalize_dim(dim, x.ndim, "index_select")
    idx = idx.reshape(-1).astype(np.int64, copy=False)
    n = x.shape[d] if x.ndim else 1
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise IndexError(f"index_select: index {int(bad[0])} is out of range for dim {d} of "
                         f"size {n} (shape {x.shape})")
    if x.ndim == 0:             # PyTorch: a 0-d tensor selects into a 0-d tensor
        if idx.size != 1:
            raise IndexError(f"index_select: a 0-d tensor takes one index, got {idx.size}")
        return reshape(Index.apply(reshape(x, (1,)), (idx,)), ())
    return Index.apply(x, (slice(None),) * d + (idx,))


class Gather(Function):
    """z[i][j] = x[i][idx[i][j]] (along ``dim``);   gx = scatter-add of g at idx"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, dim, idx):
        ctx.meta = (dim, idx, x.shape)
        # PyTorch lets the index be smaller than x outside ``dim``: look at that corner only
        corner = tuple(slice(None) if i == dim else slice(0, n) for i, n in enumerate(idx.shape))
        return _wrap(np.ascontiguousarray(np.take_along_axis(x._data[corner], idx, axis=dim)))

    @staticmethod
    def backward(ctx, g):
        dim, idx, shape = ctx.meta
        return ScatterAdd.apply(g, dim, idx, shape), None, None


class ScatterAdd(Function):
    """z = zeros(shape); z[.., idx, ..] += g along ``dim``;   gg -> gather(gg, dim, idx)"""
    tape_backward = True

    @staticmethod
    def forward(ctx, g, dim, idx, shape):
        ctx.meta = (dim, idx)
        out = ctx.empty(shape, g._data.dtype)
        out.fill(0)
        full = list(np.indices(idx.shape, sparse=True))
        full[dim] = idx
        np.add.at(out, tuple(full), g._data)
        return _wrap(out)

    @staticmethod
    def backward(ctx, gg):
        dim, idx = ctx.meta
        return Gather.apply(gg, dim, idx), None, None, None


def gather(x, dim, index):
    """Values of x picked along ``dim`` by an int64 ``index`` of x's rank (PyTorch's gather)."""
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    d = normalize_dim(dim, x.ndim, "gather")
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: index of shape {idx.shape} must have as many dims as the "
                         f"input of shape {x.shape}")
    for i, (a, b) in enumerate(zip(idx.shape, x.shape)):
        if i != d and a > b:
            raise ValueError(f"gather: index shape {idx.shape} exceeds input shape {x.shape} "
                             f"in dim {i}")
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[d]):
        raise IndexError(f"gather: index out of range for dim {d} of size {x.shape[d]}")
    return Gather.apply(x, d, idx.astype(np.int64, copy=False))
