"""Tensor factories: zeros, ones, full, empty, eye, arange, linspace, randn, rand, randint."""
import operator

import numpy as np

from tensorgrad.random import get_generator
from tensorgrad.tensor import _DEFAULT_FLOAT, Tensor, _wrap

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


def _dt(dtype):
    return _DEFAULT_FLOAT if dtype is None else np.dtype(dtype)


def zeros(*size, dtype=None, requires_grad=False):
    return _finish(np.zeros(_shape(size, "zeros"), _dt(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return _finish(np.ones(_shape(size, "ones"), _dt(dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    return _finish(np.empty(_shape(size, "empty"), _dt(dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    if isinstance(size, int):
        size = (size,)
    if dtype is None:
        dtype = np.int64 if isinstance(fill_value, (bool, int)) and \
            not isinstance(fill_value, bool) else _DEFAULT_FLOAT
    return _finish(np.full(_shape((tuple(size),), "full"), fill_value, np.dtype(dtype)),
                   requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_dt(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Like torch.arange: int64 for integer arguments, float32 otherwise."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else _DEFAULT_FLOAT
    return _finish(np.arange(start, end, step, dtype=np.dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    return _finish(np.linspace(start, end, steps, dtype=_dt(dtype)), requires_grad)


def randn(*size, dtype=None, requires_grad=False):
    """Standard normal samples from the global generator (see tg.manual_seed)."""
    shape = _shape(size, "randn")
    arr = get_generator().standard_normal(shape, dtype=_dt(dtype))
    return _finish(arr, requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from the global generator."""
    shape = _shape(size, "rand")
    return _finish(get_generator().random(shape, dtype=_dt(dtype)), requires_grad)


def randint(low, high=None, size=(), dtype=np.int64):
    if high is None:
        low, high = 0, low
    return _wrap(get_generator().integers(low, high, size=size, dtype=np.dtype(dtype)))


def _like(x, fn, dtype, requires_grad):
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a Tensor, got {type(x).__name__}")
    return _finish(fn(x.shape, dtype or x._data.dtype), requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    return _like(x, np.zeros, dtype, requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    return _like(x, np.ones, dtype, requires_grad)


def empty_like(x, dtype=None, requires_grad=False):
    return _like(x, np.empty, dtype, requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad=False):
    return _like(x, lambda s, d: np.full(s, fill_value, d), dtype, requires_grad)


def randn_like(x, dtype=None, requires_grad=False):
    return randn(x.shape, dtype=dtype or x._data.dtype, requires_grad=requires_grad)
