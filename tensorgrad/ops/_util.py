"""Helpers shared by every op family: argument coercion, broadcasting, unbroadcast.

The lowest module of ``tensorgrad.ops``: it imports no op module (docs/internals.md,
"Layers").
"""
import numbers

import numpy as np

from tensorgrad._tensor import Tensor, _wrap, tensor

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
FLOATS = (_F32, _F64)


if np.lib.NumpyVersion(np.__version__) >= "2.1.0":
    def view_as_shape(arr, shape):
        """``arr`` seen with ``shape`` without copying, or None when that needs a copy."""
        try:
            return arr.reshape(shape, copy=False)
        except ValueError:
            return None
else:
    def view_as_shape(arr, shape):
        """``arr`` seen with ``shape`` without copying, or None when that needs a copy."""
        v = arr.view()
        try:
            # numpy < 2.1 has no reshape(copy=False); there, setting .shape is the reshape
            # that never copies (numpy 2.5 deprecates it, but has the keyword)
            v.shape = shape
        except AttributeError:
            return None
        return v


def shape_str(*shapes):
    return " and ".join(str(tuple(s)) for s in shapes)


def as_tensor(x, like=None, op="op"):
    """Coerce an operand to a Tensor (Tensors pass through; arrays/lists are wrapped)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _wrap(x)
    if isinstance(x, (numbers.Number, np.generic)):
        # a number takes a float tensor's dtype; a float number next to an integer tensor
        # gives the default float32 (PyTorch's promotion), not numpy's float64
        if like is not None and like._data.dtype.kind == "f":
            dt = like._data.dtype
        elif isinstance(x, (float, np.floating)):
            dt = _F32
        else:
            dt = None
        return _wrap(np.asarray(x, dtype=dt))
    if isinstance(x, (list, tuple)):
        return tensor(x)
    raise TypeError(f"{op}: expected a Tensor, array or number, got {type(x).__name__}")


def broadcast_shape(sa, sb, op="op"):
    if sa == sb:
        return sa
    try:
        return np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(f"{op}: shapes {shape_str(sa, sb)} cannot be broadcast "
                         f"together") from None


def result_float(da, db):
    """Promotion between two float dtypes (float32 with float64 gives float64)."""
    return _F64 if (da == _F64 or db == _F64) else _F32


def normalize_dim(dim, ndim, op):
    n = max(ndim, 1)            # as in PyTorch, a 0-d tensor accepts dim 0 and -1
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension {dim} out of range for a tensor with {ndim} dims")
    return dim % ndim if ndim else 0


def normalize_dims(dim, ndim, op):
    """dim=None or () -> all dims; int or sequence -> sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        dim = (int(dim),)
    dims = tuple(sorted({normalize_dim(int(d), ndim, op) for d in dim}))
    if not dims or ndim == 0:
        # PyTorch: an empty dim list reduces every dim; a 0-d tensor has no dim to reduce
        return tuple(range(ndim))
    return dims


def unbroadcast(g, shape):
    """Sum a broadcast gradient back to ``shape`` (differentiable: built from sum/reshape)."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    return OPS.sum_to(g, shape)


class OPS:
    """Ops that helpers here build on but that live in higher op modules, which install
    them when imported (``ops/__init__.py`` imports them all before any op can run):
    ``sum_to(g, shape)``, the differentiable sum of a broadcast g back to shape, is set by
    ops/reduce.py."""
    sum_to = None
