"""Tensor factories: zeros, ones, full, empty, eye, arange, linspace, randn, rand, randint."""
import operator

import numpy as np

from tensorgrad._tensor import _DEFAULT_FLOAT, Tensor, _check_dtype, _wrap
from tensorgrad.random import get_generator

__all__ = [
    "arange",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "linspace",
    "ones",
    "ones_like",
    "rand",
    "randint",
    "randn",
    "randn_like",
    "zeros",
    "zeros_like",
]


def _shape(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        shape = tuple(operator.index(s) for s in size)    # ints only: 2.5 is not a size
    except TypeError:
        raise TypeError(f"{op}: shape must be integers, got {size!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    return shape


def _finish(arr, requires_grad):
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dt(dtype, op, default=_DEFAULT_FLOAT):
    """The numpy dtype to create, after checking that a Tensor can hold it."""
    return default if dtype is None else _check_dtype(np.dtype(dtype), op)


def zeros(*size, dtype=None, requires_grad=False):
    """A tensor filled with 0 (float32 unless ``dtype``); shape as varargs or one tuple."""
    return _finish(np.zeros(_shape(size, "zeros"), _dt(dtype, "zeros")), requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    """A tensor filled with 1 (float32 unless ``dtype``); shape as varargs or one tuple."""
    return _finish(np.ones(_shape(size, "ones"), _dt(dtype, "ones")), requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    """An uninitialised tensor (float32 unless ``dtype``); shape as varargs or one tuple."""
    return _finish(np.empty(_shape(size, "empty"), _dt(dtype, "empty")), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    """A tensor of shape ``size`` filled with ``fill_value`` (int64 for an int, else
    float32, unless ``dtype``)."""
    if isinstance(size, int):
        size = (size,)
    default = np.dtype(np.int64) if isinstance(fill_value, int) and \
        not isinstance(fill_value, bool) else _DEFAULT_FLOAT
    return _finish(np.full(_shape((tuple(size),), "full"), fill_value,
                           _dt(dtype, "full", default)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    """The [n, m] identity matrix (m = n by default): ones on the diagonal, zeros elsewhere."""
    return _finish(np.eye(n, m, dtype=_dt(dtype, "eye")), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Like torch.arange: int64 for integer arguments, float32 otherwise."""
    if end is None:
        start, end = 0, start
    ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dt = _dt(dtype, "arange", np.dtype(np.int64) if ints else _DEFAULT_FLOAT)
    return _finish(np.arange(start, end, step, dtype=dt), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    return _finish(np.linspace(start, end, steps, dtype=_dt(dtype, "linspace")),
                   requires_grad)


def randn(*size, dtype=None, requires_grad=False):
    """Standard normal samples from the global generator (see tg.manual_seed)."""
    shape = _shape(size, "randn")
    arr = get_generator().standard_normal(shape, dtype=_dt(dtype, "randn"))
    return _finish(arr, requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from the global generator."""
    shape = _shape(size, "rand")
    return _finish(get_generator().random(shape, dtype=_dt(dtype, "rand")), requires_grad)


def randint(low, high=None, size=(), dtype=np.int64):
    """Integers drawn uniformly from [low, high) (or [0, low)) by the global generator."""
    if high is None:
        low, high = 0, low
    return _wrap(get_generator().integers(low, high, size=size,
                                          dtype=_dt(dtype, "randint")))


def _like(x, fn, dtype, requires_grad, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return _finish(fn(x.shape, _dt(dtype, op, x._data.dtype)), requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    """zeros of x's shape and dtype (or ``dtype``)."""
    return _like(x, np.zeros, dtype, requires_grad, "zeros_like")


def ones_like(x, dtype=None, requires_grad=False):
    """ones of x's shape and dtype (or ``dtype``)."""
    return _like(x, np.ones, dtype, requires_grad, "ones_like")


def empty_like(x, dtype=None, requires_grad=False):
    """An uninitialised tensor of x's shape and dtype (or ``dtype``)."""
    return _like(x, np.empty, dtype, requires_grad, "empty_like")


def full_like(x, fill_value, dtype=None, requires_grad=False):
    """A tensor of x's shape and dtype (or ``dtype``) filled with ``fill_value``."""
    return _like(x, lambda s, d: np.full(s, fill_value, d), dtype, requires_grad, "full_like")


def randn_like(x, dtype=None, requires_grad=False):
    """Standard normal samples of x's shape and dtype (or ``dtype``)."""
    return randn(x.shape, dtype=dtype or x._data.dtype, requires_grad=requires_grad)
