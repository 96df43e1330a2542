"""All tensor ops, grouped by family; this module also installs them as Tensor methods.

Each op's forward and its vector-Jacobian product sit side by side in its family module:
elementwise, activation, reduce, shape (views, indexing), blas (matmul), distance, loss.
"""
from tensorgrad._tensor import Tensor
from tensorgrad.ops.activation import log_softmax, relu, sigmoid, softmax, tanh
from tensorgrad.ops.blas import bmm, dot, matmul, mm
from tensorgrad.ops.elementwise import (
    abs,
    add,
    cast,
    clamp,
    div,
    eq,
    exp,
    ge,
    gt,
    le,
    log,
    logical_not,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    reciprocal,
    sign,
    sqrt,
    square,
    sub,
    where,
)
from tensorgrad.ops.reduce import argmax, argmin, logsumexp, max, mean, min, sum
from tensorgrad.ops.shape import (
    cat,
    chunk,
    clone,
    contiguous,
    expand,
    flatten,
    gather,
    index,
    movedim,
    narrow,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    t,
    transpose,
    unsqueeze,
    view,
)

__all__ = ["abs", "add", "argmax", "argmin", "bmm", "cast", "cat", "chunk", "clamp", "clone",
           "contiguous", "div", "dot", "eq", "exp", "expand", "flatten", "gather", "ge", "gt",
           "index", "le", "log", "log_softmax", "logical_not", "logsumexp", "lt", "matmul",
           "max", "maximum", "mean", "min", "minimum", "mm", "movedim", "mul", "narrow", "ne",
           "neg", "permute", "pow", "reciprocal", "relu", "reshape", "sigmoid", "sign",
           "softmax", "split", "sqrt", "square", "squeeze", "stack", "sub", "sum", "t", "tanh",
           "transpose", "unsqueeze", "view", "where"]


def _install():
    T = Tensor
    for name in ["abs", "add", "argmax", "argmin", "chunk", "clamp", "contiguous", "div", "eq",
                 "exp", "expand", "flatten", "gather", "ge", "gt", "le", "log", "log_softmax",
                 "logsumexp", "lt", "matmul", "max", "maximum", "mean", "min", "minimum", "mul",
                 "movedim", "narrow", "ne", "neg", "permute", "pow", "reciprocal", "relu",
                 "reshape", "sigmoid", "sign", "softmax", "split", "sqrt", "square", "squeeze",
                 "sub", "sum", "t", "tanh", "transpose", "unsqueeze", "view", "clone"]:
        setattr(T, name, globals()[name])
    T.__add__ = add
    T.__radd__ = lambda self, other: add(other, self)
    T.__sub__ = sub
    T.__rsub__ = lambda self, other: sub(other, self)
    T.__mul__ = mul
    T.__rmul__ = lambda self, other: mul(other, self)
    T.__truediv__ = div
    T.__rtruediv__ = lambda self, other: div(other, self)
    T.__pow__ = pow
    T.__rpow__ = lambda self, other: pow(other, self)
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda self, other: matmul(other, self)
    T.__neg__ = neg
    T.__pos__ = lambda self: self
    T.__abs__ = abs
    T.__eq__ = eq
    T.__ne__ = ne
    T.__lt__ = lt
    T.__le__ = le
    T.__gt__ = gt
    T.__ge__ = ge
    T.__invert__ = logical_not
    T.__getitem__ = index
    T.__hash__ = lambda self: id(self)

    def __setitem__(self, key, value):
        from tensorgrad.ops.shape import _norm_key
        self._check_inplace("__setitem__")
        self._data[_norm_key(key)] = value._data if isinstance(value, Tensor) else value
        self._version[0] += 1

    T.__setitem__ = __setitem__

    def _where(self, condition, other):
        """self where condition is true, other elsewhere (PyTorch's Tensor.where)."""
        return where(condition, self, other)

    T.where = _where

    def _converter(dtype, name):
        def convert(self):
            return cast(self, dtype)
        convert.__name__ = convert.__qualname__ = name
        convert.__doc__ = f"self converted to {dtype} (no copy if it already is)."
        return convert

    T.float = _converter("float32", "float")
    T.double = _converter("float64", "double")
    T.long = _converter("int64", "long")
    T.int = _converter("int32", "int")
    T.bool = _converter("bool", "bool")

    def to(self, dtype):
        """Convert to ``dtype`` (differentiable between float dtypes)."""
        return cast(self, dtype)

    T.to = to
    T.type = to


_install()
