"""How a binary elementwise op's operands reach its kernel.

The fast path, two float Tensors of one dtype or a float Tensor and a Python number, goes
straight to ``function.dispatch`` (record a node, or call the kernel). Everything else is
coerced first: mixed float dtypes promote to float64 (as in PyTorch), a Python number takes
the tensor's dtype, and integer or bool operands compute with numpy and carry no gradient.
"""
import numbers

import numpy as np

from tensorgrad._kernels import elementwise as EK
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import dispatch
from tensorgrad.ops._util import FLOATS, as_tensor, broadcast_shape, result_float, shape_str
from tensorgrad.ops.cast import cast

_binary = EK.binary
_binary_scalar = EK.binary_scalar
_NUM = (int, float, np.floating, np.integer)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


_NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
              "pow": np.power, "maximum": np.maximum, "minimum": np.minimum}


def route_binary(cls, a, b, name):
    """Route a binary op: the fast path is two float Tensors of one dtype, or a float Tensor
    and a Python number; everything else is coerced/promoted first."""
    if isinstance(a, Tensor):
        da = a._data.dtype
        if isinstance(b, Tensor):
            db = b._data.dtype
            if db is da and (da is _F32 or da is _F64):
                return dispatch(cls, _binary_direct, a, b)
            if da == db and da in FLOATS:
                return dispatch(cls, _binary_direct, a, b)
        elif isinstance(b, _NUM) and not isinstance(b, (bool, np.bool_)) and da in FLOATS:
            return dispatch(cls, _binary_direct, a, b)
    elif isinstance(b, Tensor) and isinstance(a, _NUM) and not isinstance(a, (bool, np.bool_)) \
            and b._data.dtype in FLOATS:
        return dispatch(cls, _binary_direct, a, b)
    return _promote(cls, a, b, name)


def _binary_direct(cls, a, b):
    """``cls.forward``'s values without a node: a float Tensor and a Tensor of its dtype or
    a number (either side)."""
    if not isinstance(b, Tensor):
        ad = a._data
        out = np.empty(ad.shape, ad.dtype)
        _binary_scalar(cls.code, ad, float(b), out, False)
        return _wrap(out)
    if not isinstance(a, Tensor):
        bd = b._data
        out = np.empty(bd.shape, bd.dtype)
        _binary_scalar(cls.code, bd, float(a), out, True)
        return _wrap(out)
    ad = a._data
    bd = b._data
    shape = ad.shape
    if bd.shape != shape:
        shape = broadcast_shape(shape, bd.shape, cls.__name__.lower())
    out = np.empty(shape, ad.dtype)
    # (a broadcast single value, e.g. the expanded gradient of a sum, collapses to one
    # stride-0 run: the kernel's scalar loop, read from memory when the kernel runs)
    _binary(cls.code, ad, bd, out)
    return _wrap(out)


def _promote(cls, a, b, name):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    a_num = isinstance(a, (numbers.Number, np.generic))
    b_num = isinstance(b, (numbers.Number, np.generic))
    ta = None if a_num else as_tensor(a, op=name)
    tb = None if b_num else as_tensor(b, op=name)
    da = ta._data.dtype if ta is not None else None
    db = tb._data.dtype if tb is not None else None
    if (da is not None and da.kind == "f") or (db is not None and db.kind == "f"):
        if da is not None and da.kind == "f" and db is not None and db.kind == "f":
            dt = result_float(da, db)
        else:
            dt = da if (da is not None and da.kind == "f") else db
        ta = cast(ta, dt) if ta is not None else None
        tb = cast(tb, dt) if tb is not None else None
        x = ta if ta is not None else float(a)
        y = tb if tb is not None else float(b)
        return cls.apply(x, y)
    # integer/bool arithmetic (never differentiable); a float scalar makes the result float32
    xa = ta._data if ta is not None else a
    xb = tb._data if tb is not None else b
    if name == "div" or isinstance(a, float) or isinstance(b, float):
        res = _NP_BINARY[name](np.asarray(xa, np.float32), np.asarray(xb, np.float32))
        return _wrap(np.asarray(res, np.float32))
    try:
        res = _NP_BINARY[name](xa, xb)
    except ValueError:
        raise ValueError(f"{name}: shapes {shape_str(np.shape(xa), np.shape(xb))} cannot be "
                         f"broadcast together") from None
    return _wrap(np.asarray(res))
