"""Shape ops: views that share memory, and their gradients.

``view``, ``transpose``, ``permute``, ``squeeze``, ``unsqueeze``, ``expand`` and basic slicing
return numpy views (no copy) that share the version counter of their base, so an in-place
write through a view is seen by backward's checks. ``view`` refuses when the strides make a
copy necessary; ``reshape`` copies only then. Gradients of views are views of the gradient
(reshape/permute) or sums (expand); indexing scatters back with accumulation of repeated
indices.
"""
import math

import numpy as np

from tensorgrad._tensor import _wrap
from tensorgrad.function import Function
from tensorgrad.ops._util import (
    _F64,
    FLOATS,
    as_tensor,
    normalize_dim,
    shape_str,
    unbroadcast,
    view_as_shape,
)
from tensorgrad.ops.cast import cast

__all__ = [
    "cat",
    "chunk",
    "clone",
    "contiguous",
    "expand",
    "expand_as",
    "flatten",
    "movedim",
    "permute",
    "reshape",
    "reshape_as",
    "split",
    "squeeze",
    "stack",
    "t",
    "transpose",
    "unsqueeze",
    "view",
    "view_as",
]


def _view_of(arr, base):
    """A Tensor on ``arr`` that shares ``base``'s version counter (arr is a view of it)."""
    t = _wrap(arr)
    t._version = base._version
    return t


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _infer(shape, size, op, src):
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise ValueError(f"{op}: only one dimension can be -1, got {shape}")
    if neg:
        rest = 1
        for i, s in enumerate(shape):
            if i != neg[0]:
                rest *= s
        if rest == 0 or size % rest:
            raise ValueError(f"{op}: shape {shape} is invalid for input of shape {src} "
                             f"({size} elements)")
        shape = shape[:neg[0]] + (size // rest,) + shape[neg[0] + 1:]
    n = 1
    for s in shape:
        n *= s
    if n != size:
        raise ValueError(f"{op}: shape {shape} is invalid for input of shape {src} "
                         f"({size} elements)")
    return shape


class View(Function):
    """z = x viewed as ``shape`` (no copy);   gx = g reshaped to x.shape"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.meta = x.shape
        v = view_as_shape(x._data, shape)
        if v is None:
            raise RuntimeError(
                f"view: shape {shape} is not compatible with the input's shape {x.shape} and "
                f"strides {x.stride()} (the memory is not contiguous); use .reshape(...), "
                f"which copies when it must")
        return _view_of(v, x)

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.meta), None


class Reshape(Function):
    """z = x reshaped (a view when the strides allow, else a copy);   gx = g reshaped back"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.meta = x.shape
        v = view_as_shape(x._data, shape)
        if v is None:                   # the strides do not allow a view: copy
            return _wrap(np.ascontiguousarray(np.reshape(x._data, shape)))
        return _view_of(v, x)

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.meta), None


def view(x, *shape):
    """The same memory seen with another shape; raises if that needs a copy (never copies)."""
    shape = _infer(_shape_arg(shape), x._data.size, "view", x.shape)
    if shape == x.shape:
        return x if not x._requires_grad else View.apply(x, shape)
    return View.apply(x, shape)


def reshape(x, *shape):
    """Another shape for the same elements: a view when possible, a copy only when needed."""
    x = as_tensor(x, op="reshape")
    shape = _infer(_shape_arg(shape), x._data.size, "reshape", x.shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape)


def view_as(x, other):
    """view(x, other.shape): the same memory with ``other``'s shape (never copies)."""
    return view(x, other.shape)


def reshape_as(x, other):
    """reshape(x, other.shape): ``other``'s shape, a view when the strides allow."""
    return reshape(x, other.shape)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim`` .. ``end_dim`` into one (a view when the strides allow)."""
    nd = x.ndim
    if nd == 0:
        return reshape(x, (1,))
    s = normalize_dim(start_dim, nd, "flatten")
    e = normalize_dim(end_dim, nd, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"(for a tensor of shape {x.shape})")
    # the merged size spelled out: -1 is ambiguous when another dim is 0
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


class Permute(Function):
    """z = x with axes permuted (a view);   gx = g permuted by the inverse permutation"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, perm):
        ctx.meta = perm
        return _view_of(x._data.transpose(perm), x)

    @staticmethod
    def backward(ctx, g):
        inv = tuple(np.argsort(ctx.meta))
        return permute(g, inv), None


def permute(x, *dims):
    """Reorder the dimensions (a view, no copy): z's dim i is x's dim ``dims[i]``.
    gx = g permuted back by the inverse permutation."""
    dims = _shape_arg(dims)
    nd = x.ndim
    if len(dims) != nd:
        raise ValueError(f"permute: got {len(dims)} dims for a tensor with {nd} dims "
                         f"(shape {x.shape})")
    perm = tuple(normalize_dim(d, nd, "permute") for d in dims)
    if sorted(perm) != list(range(nd)):
        raise ValueError(f"permute: {dims} is not a permutation of the {nd} dims")
    if perm == tuple(range(nd)):
        return x
    return Permute.apply(x, perm)


def transpose(x, dim0=-2, dim1=-1):
    """Swap two dimensions (a view, no copy)."""
    nd = x.ndim
    if nd < 2 and dim0 in (-2, -1, 0) and dim1 in (-2, -1, 0):
        return x
    d0 = normalize_dim(dim0, nd, "transpose")
    d1 = normalize_dim(dim1, nd, "transpose")
    perm = list(range(nd))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return permute(x, tuple(perm))


def t(x):
    """Transpose a tensor of at most 2 dims (a view; 0-d and 1-d tensors are returned as
    they are)."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dims, got shape {x.shape}")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def movedim(x, source, destination):
    """Move dimension ``source`` to position ``destination`` (a view, like permute)."""
    nd = x.ndim
    s = normalize_dim(source, nd, "movedim")
    d = normalize_dim(destination, nd, "movedim")
    order = [i for i in range(nd) if i != s]
    order.insert(d, s)
    return permute(x, tuple(order))


def squeeze(x, dim=None):
    """Remove size-1 dimensions (all, or the given one(s))."""
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {normalize_dim(d, x.ndim, "squeeze") for d in dims}
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return view(x, shape) if shape != x.shape else x


def unsqueeze(x, dim):
    """Insert a size-1 dimension at ``dim``."""
    nd = x.ndim + 1
    d = normalize_dim(dim, nd, "unsqueeze")
    shape = x.shape[:d] + (1,) + x.shape[d:]
    return View.apply(x, shape) if x._data.flags.c_contiguous else Reshape.apply(x, shape)


class Expand(Function):
    """z = x broadcast to ``shape`` (a view with zero strides);   gx = sum of g over the
    broadcast dims"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.meta = x.shape
        return _view_of(np.broadcast_to(x._data, shape), x)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.meta), None


def expand(x, *shape):
    """Broadcast to a larger shape without copying (-1 keeps a dimension)."""
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer dims {shape}")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(shape))
    try:
        np.broadcast_shapes(x.shape, shape)
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"expand: shape {x.shape} cannot be expanded to {shape}") from None
    if shape == x.shape:
        return x
    return Expand.apply(x, shape)


def expand_as(x, other):
    """expand(x, other.shape): broadcast to ``other``'s shape without copying.
    gx = g summed over the broadcast dims"""
    return expand(x, other.shape)


class Contiguous(Function):
    """z = a C-contiguous copy of x;   gx = g"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x):
        out = ctx.empty(x.shape, x._data.dtype)
        np.copyto(out, x._data)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return g


def contiguous(x):
    """x itself if C-contiguous, else a contiguous copy."""
    return x if x._data.flags.c_contiguous else Contiguous.apply(x)


def clone(x):
    """A C-contiguous copy of x that stays in the graph.  gx = g"""
    return Contiguous.apply(x)


# ---------------------------------------------------------------------------------------------
# split / cat / stack
# ---------------------------------------------------------------------------------------------
class Split(Function):
    """outputs = views of x split along ``dim``;   gx = cat(grads, dim)"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, sizes, dim):
        ctx.meta = dim
        outs = []
        start = 0
        idx = [slice(None)] * x.ndim
        for s in sizes:
            idx[dim] = slice(start, start + s)
            outs.append(_view_of(x._data[tuple(idx)], x))
            start += s
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        return cat(grads, ctx.meta), None, None


def split(x, split_size_or_sections, dim=0):
    """Split into views along ``dim``: pieces of a given size (the last may be smaller) or
    a list of sizes."""
    d = normalize_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split size must be positive, got {step}")
        sizes = [step] * (n // step) + ([n % step] if n % step else [])
        if not sizes:
            sizes = [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n} (dim {d} of shape "
                             f"{x.shape})")
    return tuple(Split.apply(x, tuple(sizes), d)) if len(sizes) > 1 else (x,)


def chunk(x, chunks, dim=0):
    """Split into ``chunks`` views of (nearly) equal size along ``dim``, as PyTorch does:
    each chunk has ceil(n / chunks) elements and the last one may be smaller (or fewer
    chunks are returned)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = normalize_dim(dim, x.ndim, "chunk")
    n = x.shape[d]
    if n == 0:                  # PyTorch: ``chunks`` empty pieces
        return tuple(Split.apply(x, (0,) * chunks, d)) if chunks > 1 else (x,)
    step = max(-(-n // chunks), 1)
    return split(x, step, d)


class Cat(Function):
    """z = concatenation along ``dim``;   g_i = the slice of g belonging to input i"""
    tape_backward = True

    @staticmethod
    def forward(ctx, dim, *xs):
        sizes = [x.shape[dim] for x in xs]
        ctx.meta = (dim, sizes)
        shape = list(xs[0].shape)
        shape[dim] = sum(sizes)
        out = ctx.empty(tuple(shape), xs[0]._data.dtype)
        np.concatenate([x._data for x in xs], axis=dim, out=out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        dim, sizes = ctx.meta
        parts = split(g, sizes, dim) if len(sizes) > 1 else (g,)
        return (None,) + tuple(parts)


def cat(tensors, dim=0):
    """Concatenate along an existing dimension; float32 mixed with float64 gives float64
    (each input's gradient comes back in its own dtype).  g_i = the slice of g of input i"""
    xs = [as_tensor(t, op="cat") for t in tensors]
    if not xs:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    nd = xs[0].ndim
    d = normalize_dim(dim, nd, "cat")
    for x in xs[1:]:
        if x.ndim != nd or any(a != b for i, (a, b) in enumerate(zip(x.shape, xs[0].shape))
                               if i != d):
            raise ValueError(f"cat: shapes {shape_str(xs[0].shape, x.shape)} do not match "
                             f"outside dim {d}")
    dts = {x._data.dtype for x in xs}
    if len(dts) > 1:
        if any(t not in FLOATS for t in dts):
            raise TypeError(f"cat: dtypes {' and '.join(sorted(map(str, dts)))} differ (only "
                            f"float32 and float64 mix, giving float64)")
        xs = [cast(x, _F64) for x in xs]    # float32 + float64 -> float64, as in PyTorch
    return Cat.apply(d, *xs)        # always a new tensor, even of one input (as in PyTorch)


def stack(tensors, dim=0):
    """Join along a new dimension."""
    xs = [as_tensor(t, op="stack") for t in tensors]
    if not xs:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    for x in xs[1:]:
        if x.shape != xs[0].shape:
            raise ValueError(f"stack: all tensors must have the same shape, got "
                             f"{shape_str(xs[0].shape, x.shape)}")
    d = normalize_dim(dim, xs[0].ndim + 1, "stack")
    return cat([unsqueeze(x, d) for x in xs], d)
