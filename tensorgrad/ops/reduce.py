"""Reductions: sum, mean, max, min, amax, amin, logsumexp (and argmax/argmin).

Each takes ``dim``/``keepdim`` (PyTorch's names) and also numpy's ``axis``/``keepdims`` (and
``out=None``), so ``np.sum(t)``, ``np.mean(t)``, ``np.max(t, axis=1)`` work on a Tensor: numpy
calls the method of the same name with those keywords.

Kernels see a C-contiguous array as [A, B, C] and reduce the middle axis B: any contiguous
run of axes reduces in one call; other axis sets reduce run by run. Sums accumulate in double.
The backward of a sum broadcasts g back (a view, no copy); max/min route the whole gradient to
the winning element (the first one on ties, like argmax); amax/amin split it evenly among
tied maxima, as PyTorch does.
"""
from collections import namedtuple

import numpy as np

from tensorgrad._kernels import reduce as RK
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function
from tensorgrad.ops import _util
from tensorgrad.ops._util import FLOATS, as_tensor, normalize_dim, normalize_dims
from tensorgrad.ops.cast import cast
from tensorgrad.ops.elementwise import exp, maximum, minimum, mul, sub
from tensorgrad.ops.index import gather
from tensorgrad.ops.shape import expand, permute, reshape

__all__ = ["amax", "amin", "argmax", "argmin", "logsumexp", "max", "mean", "min", "sum"]

# what max(x, dim) / min(x, dim) return, as torch.return_types.max / .min
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])
MaxResult.__doc__ = "(values, indices) of max(x, dim), like torch.return_types.max."
MinResult.__doc__ = "(values, indices) of min(x, dim), like torch.return_types.min."


def _runs(dims):
    """Split sorted dims into runs of consecutive axes: (0,1,3) -> [(0,1), (3,3)]."""
    runs = []
    for d in dims:
        if runs and runs[-1][1] == d - 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return runs


def _prod(shape):
    p = 1
    for s in shape:
        p *= s
    return p


def _sum_data(d, dims, scale, ctx=None):
    """Sum of ndarray d over sorted ``dims`` (keepdim shape), times ``scale``."""
    if not d.flags.c_contiguous:
        d = np.ascontiguousarray(d)
    runs = _runs(dims)
    for k, (lo, hi) in enumerate(reversed(runs)):
        shape = d.shape
        a, b, c = _prod(shape[:lo]), _prod(shape[lo:hi + 1]), _prod(shape[hi + 1:])
        out_shape = shape[:lo] + (1,) * (hi + 1 - lo) + shape[hi + 1:]
        last = k == len(runs) - 1
        out = ctx.empty(out_shape, d.dtype) if (last and ctx is not None) \
            else np.empty(out_shape, d.dtype)
        RK.sum_mid(d.reshape(a, b, c), out.reshape(a, c), scale if last else 1.0)
        d = out
    return d


class Sum(Function):
    """z = sum(x, dims) * scale;   gx = broadcast(g) * scale   (scale = 1/n gives mean)"""
    tape_forward = True
    tape_backward = True

    @staticmethod
    def forward(ctx, x, dims, keepdim, scale):
        d = x._data
        if not dims:
            ctx.meta = (d.shape, dims, scale, None)
            out = ctx.empty(d.shape, d.dtype)
            np.multiply(d, scale, out=out)
            return _wrap(out)
        kshape = tuple(1 if i in dims else s for i, s in enumerate(d.shape))
        if len(dims) == d.ndim and d.flags.c_contiguous:
            out = ctx.empty(kshape if keepdim else (), d.dtype)
            RK.sum_all_into(d, out, scale)
        else:
            r = _sum_data(d, dims, scale, ctx if keepdim else None)
            out = r if keepdim else r.reshape(tuple(s for i, s in enumerate(d.shape)
                                                     if i not in dims))
        ctx.meta = (d.shape, dims, scale, kshape)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        in_shape, dims, scale, kshape = ctx.meta
        if not dims:
            return mul(g, scale), None, None, None
        gk = reshape(g, kshape)
        if scale != 1.0:
            gk = mul(gk, scale)
        return expand(gk, in_shape), None, None, None


def _numpy_args(op, dim, keepdim, axis, keepdims, out):
    """(dim, keepdim) from numpy's spelling of them: ``axis`` (an alias of ``dim``, as in
    PyTorch) and ``keepdims``; ``out`` is accepted only as None (numpy passes out=None)."""
    if out is not None:
        raise TypeError(f"{op}: out= is not supported (the result is always a new tensor)")
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got both dim={dim!r} and axis={axis!r}; axis is numpy's "
                            f"name for dim: pass only one of them")
        dim = axis
    if keepdims is not None:
        if keepdim and not keepdims:
            raise TypeError(f"{op}: got keepdim=True and keepdims={keepdims!r}; keepdims is "
                            f"numpy's name for keepdim: pass only one of them")
        keepdim = bool(keepdims)
    return dim, keepdim


def sum(x, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None, out=None):
    """Sum over ``dim`` (an int, a tuple, or None for all), accumulated in double;
    ``dtype`` converts x first. z = Σ x;  gx = g broadcast back to x's shape."""
    if axis is not None or keepdims is not None or out is not None:
        dim, keepdim = _numpy_args("sum", dim, keepdim, axis, keepdims, out)
    x = as_tensor(x, op="sum")
    if dtype is not None:
        x = cast(x, dtype)
    dims = normalize_dims(dim, x.ndim, "sum")
    if x._data.dtype not in FLOATS:
        return _wrap(np.asarray(np.sum(x._data, axis=dims, keepdims=keepdim)))
    return Sum.apply(x, dims, keepdim, 1.0)


def _sum_to(g, shape):
    """g, a broadcast of ``shape``, summed back to ``shape`` with sum and reshape, so that
    double backward goes through it: the core of ``unbroadcast``."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    if axes:
        g = sum(g, axes)
    if g.shape != shape:
        g = reshape(g, shape)
    return g


_util.OPS.sum_to = _sum_to


def mean(x, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None, out=None):
    """Mean over ``dim`` (an int, a tuple, or None for all); integer tensors give float32,
    ``dtype`` (a float dtype) converts x first. z = Σ x / n;  gx = g / n broadcast back."""
    if axis is not None or keepdims is not None or out is not None:
        dim, keepdim = _numpy_args("mean", dim, keepdim, axis, keepdims, out)
    x = as_tensor(x, op="mean")
    if dtype is not None:
        if np.dtype(dtype) not in FLOATS:
            raise TypeError(f"mean: dtype must be float32 or float64, got {np.dtype(dtype)}")
        x = cast(x, dtype)
    elif x._data.dtype not in FLOATS:
        x = cast(x, np.float32)
    dims = normalize_dims(dim, x.ndim, "mean")
    n = _prod(x.shape[d] for d in dims)
    if n == 0:
        raise ValueError(f"mean: reducing over zero elements (shape {x.shape}, dims {dims})")
    return Sum.apply(x, dims, keepdim, 1.0 / n)


class _MaxMin(Function):
    """z = max(x, dim);   gx = g routed to the arg-max position (first on ties)."""
    tape_backward = True
    kernel = None

    @classmethod
    def forward(cls, ctx, x, dim, keepdim):
        d = x._data
        if not d.flags.c_contiguous:
            d = np.ascontiguousarray(d)
        shape = d.shape
        if dim is None:
            a, b, c = 1, d.size, 1
            kshape = (1,) * d.ndim
            oshape = kshape if keepdim else ()
        else:
            a, b, c = _prod(shape[:dim]), shape[dim], _prod(shape[dim + 1:])
            kshape = shape[:dim] + (1,) + shape[dim + 1:]
            oshape = kshape if keepdim else shape[:dim] + shape[dim + 1:]
        if b == 0:
            raise ValueError(f"{cls.__name__.lower()}: reduction over an empty dimension "
                             f"(shape {shape})")
        out = ctx.empty(oshape, d.dtype)
        idx = np.empty(oshape, np.int64)
        cls.kernel(d.reshape(a, b, c), out.reshape(a, c), idx.reshape(a, c))
        ctx.meta = (shape, dim, kshape, idx)
        values, indices = _wrap(out), _wrap(idx)
        ctx.mark_non_differentiable(indices)
        return values, indices

    @staticmethod
    def backward(ctx, g, _gi):
        shape, dim, kshape, idx = ctx.meta
        return RouteGrad.apply(g, idx, shape, dim, kshape), None, None


class Max(_MaxMin):
    kernel = staticmethod(RK.max_mid)


class Min(_MaxMin):
    kernel = staticmethod(RK.min_mid)


class RouteGrad(Function):
    """gx = zeros(shape) with g placed at the arg-max positions; linear in g (backward:
    gather g back from those positions)."""
    tape_backward = True

    @staticmethod
    def forward(ctx, g, idx, shape, dim, kshape):
        ctx.meta = (idx, shape, dim, kshape)
        out = ctx.empty(shape, g._data.dtype)
        out.fill(0)
        gk = g._data.reshape(kshape)
        ik = idx.reshape(kshape)
        if dim is None:
            out.reshape(-1)[ik.reshape(-1)] = gk.reshape(-1)
        else:
            np.put_along_axis(out, ik, gk, axis=dim)
        return _wrap(out)

    @staticmethod
    def backward(ctx, gg):
        idx, _shape, dim, kshape = ctx.meta
        if dim is None:
            r = gather(reshape(gg, (-1,)), 0, _wrap(idx.reshape(1)))
        else:
            r = gather(gg, dim, _wrap(idx.reshape(kshape)))
        return reshape(r, idx.shape), None, None, None, None


def _maxmin(cls, np_fn, x, dim, keepdim, name, binary, axis, keepdims, out, result):
    # PyTorch's max(x, dim) gives (values, indices); numpy's max(x, axis=) the values only
    with_indices = dim is not None
    if axis is not None or keepdims is not None or out is not None:
        dim, keepdim = _numpy_args(name, dim, keepdim, axis, keepdims, out)
    if isinstance(dim, Tensor):
        return binary(x, dim)
    x = as_tensor(x, op=name)
    if dim is not None:
        dim = normalize_dim(dim, x.ndim, name)
        if x.ndim == 0:
            dim = None          # a 0-d tensor is its own maximum, at index 0
    if x._data.dtype not in FLOATS:
        if x._data.size == 0:
            raise ValueError(f"{name}: reduction over an empty tensor")
        values = _wrap(np.asarray(np_fn(x._data, axis=dim, keepdims=keepdim)))
        if not with_indices:
            return values
        arg = (np.argmax if name == "max" else np.argmin)(x._data, axis=dim, keepdims=keepdim)
        return result(values, _wrap(np.asarray(arg)))
    values, indices = cls.apply(x, dim, keepdim)
    return result(values, indices) if with_indices else values


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """max(x) -> the largest value; max(x, dim) -> a named tuple (values, indices), like
    torch.return_types.max; max(x, y) -> maximum.

    With numpy's ``axis=`` (as ``np.max(t, axis=1)`` passes it) the result is numpy's: the
    values only. The gradient goes to the winning element; on ties, to the first one (like
    argmax).
    """
    return _maxmin(Max, np.max, x, dim, keepdim, "max", maximum, axis, keepdims, out,
                   MaxResult)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """min(x) -> the smallest value; min(x, dim) -> a named tuple (values, indices), like
    torch.return_types.min; min(x, y) -> minimum.

    With numpy's ``axis=`` the result is the values only, as for ``max``.
    """
    return _maxmin(Min, np.min, x, dim, keepdim, "min", minimum, axis, keepdims, out,
                   MinResult)


class _AMaxMin(Function):
    """z = max(x, dims) (or min);   gx = g * [x == z] / count(x == z)   (ties share g)"""
    np_fn = None

    @classmethod
    def forward(cls, ctx, x, dims, keepdim):
        d = x._data
        out = ctx.empty(tuple(1 if i in dims else s for i, s in enumerate(d.shape))
                        if keepdim else tuple(s for i, s in enumerate(d.shape)
                                              if i not in dims), d.dtype)
        cls.np_fn(d, axis=dims, keepdims=keepdim, out=out)
        ctx.save_for_backward(x)
        ctx.meta = dims
        return _wrap(out)

    @classmethod
    def backward(cls, ctx, g):
        (x,) = ctx.saved_tensors
        dims = ctx.meta
        d = x._data
        kshape = tuple(1 if i in dims else s for i, s in enumerate(d.shape))
        hit = np.asarray(d == cls.np_fn(d, axis=dims, keepdims=True))
        share = hit.astype(d.dtype)         # a constant: 0 a.e. in x
        share /= hit.sum(axis=dims, keepdims=True)
        return mul(expand(reshape(g, kshape), d.shape), _wrap(share)), None, None


class AMax(_AMaxMin):
    np_fn = staticmethod(np.max)


class AMin(_AMaxMin):
    np_fn = staticmethod(np.min)


def _amaxmin(cls, x, dim, keepdim, name):
    x = as_tensor(x, op=name)
    dims = normalize_dims(dim, x.ndim, name)
    if any(x.shape[i] == 0 for i in dims):
        raise ValueError(f"{name}: reduction over an empty dimension (shape {x.shape}, dims "
                         f"{dims})")
    if x._data.dtype not in FLOATS:
        return _wrap(np.asarray(cls.np_fn(x._data, axis=dims, keepdims=keepdim)))
    return cls.apply(x, dims, keepdim)


def amax(x, dim=(), keepdim=False):
    """The largest values over ``dim`` (an int or a tuple; () or None: all dims), values only.

    z = max over dims of x;  gx = g * [x == z] / (number of entries equal to z): tied maxima
    share the gradient evenly, as in PyTorch (``max(x, dim)`` gives it all to the first).
    """
    return _amaxmin(AMax, x, dim, keepdim, "amax")


def amin(x, dim=(), keepdim=False):
    """The smallest values over ``dim`` (an int or a tuple; () or None: all dims), values only.

    z = min over dims of x;  gx = g * [x == z] / (number of entries equal to z) (ties share).
    """
    return _amaxmin(AMin, x, dim, keepdim, "amin")


def argmax(x, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """The int64 index of the largest value (in the flattened tensor, or along ``dim``); the
    first one on ties. Not differentiable."""
    if axis is not None or keepdims is not None or out is not None:
        dim, keepdim = _numpy_args("argmax", dim, keepdim, axis, keepdims, out)
    x = as_tensor(x, op="argmax")
    return _wrap(np.asarray(np.argmax(x._data, axis=dim, keepdims=keepdim)))


def argmin(x, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """The int64 index of the smallest value (in the flattened tensor, or along ``dim``);
    the first one on ties. Not differentiable."""
    if axis is not None or keepdims is not None or out is not None:
        dim, keepdim = _numpy_args("argmin", dim, keepdim, axis, keepdims, out)
    x = as_tensor(x, op="argmin")
    return _wrap(np.asarray(np.argmin(x._data, axis=dim, keepdims=keepdim)))


class LogSumExp(Function):
    """z = log(sum(exp(x), dim));   gx = g * exp(x - z)   (= g * softmax(x))"""
    tape_backward = True

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        d = x._data
        if not d.flags.c_contiguous:
            d = np.ascontiguousarray(d)
        shape = d.shape
        kshape = shape[:dim] + (1,) + shape[dim + 1:]
        out = ctx.empty(kshape if keepdim else shape[:dim] + shape[dim + 1:], d.dtype)
        RK.logsumexp_mid(d.reshape(_prod(shape[:dim]), shape[dim], _prod(shape[dim + 1:])),
                         out.reshape(_prod(shape[:dim]), _prod(shape[dim + 1:])))
        z = _wrap(out)
        ctx.save_for_backward(x, z)
        ctx.meta = kshape
        return z

    @staticmethod
    def backward(ctx, g):
        x, z = ctx.saved_tensors
        k = ctx.meta
        return mul(reshape(g, k), exp(sub(x, reshape(z, k)))), None, None


def logsumexp(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """log(sum(exp(x))) over ``dim`` (required: an int or a tuple of dims; ``axis`` is an
    alias), stable for large inputs. z = log Σ exp(x);  gx = g * exp(x - z) = g * softmax(x)
    over the reduced dims."""
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_args("logsumexp", dim, keepdim, axis, keepdims, None)
    if dim is None:
        raise TypeError("logsumexp: missing the dimension to reduce (pass dim=)")
    x = as_tensor(x, op="logsumexp")
    if x._data.dtype not in FLOATS:
        x = cast(x, np.float32)
    if isinstance(dim, (tuple, list)):
        dims = normalize_dims(dim, x.ndim, "logsumexp")
        if len(dims) > 1:
            return _logsumexp_dims(x, dims, keepdim)
        dim = dims[0] if dims else 0
    dim = normalize_dim(dim, x.ndim, "logsumexp")
    if x.ndim == 0:
        return LogSumExp.apply(reshape(x, (1,)), 0, False)    # log(exp(x)) of one element
    return LogSumExp.apply(x, dim, keepdim)


def _logsumexp_dims(x, dims, keepdim):
    """logsumexp over several dims: move them last, merge them into one, reduce that one."""
    kept = tuple(i for i in range(x.ndim) if i not in dims)
    n = _prod(x.shape[i] for i in dims)
    flat = reshape(permute(x, kept + dims), tuple(x.shape[i] for i in kept) + (n,))
    z = LogSumExp.apply(flat, len(kept), False)
    if keepdim:
        z = reshape(z, tuple(1 if i in dims else s for i, s in enumerate(x.shape)))
    return z
