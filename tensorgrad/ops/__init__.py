"""All tensor ops, grouped by family; this module also installs them as Tensor methods.

Each op's forward and its vector-Jacobian product sit side by side in its family module:
cast, elementwise (arithmetic), select (comparisons, where, clamp), activation, reduce, shape
(views), index, matmul, distance, loss. ``registry`` lists every public op
once, with its formulas and kernel (``table()``).
"""
from tensorgrad._tensor import Tensor
from tensorgrad.ops import registry
from tensorgrad.ops.activation import log_softmax, relu, sigmoid, softmax, tanh
from tensorgrad.ops.cast import cast
from tensorgrad.ops.distance import cdist
from tensorgrad.ops.elementwise import (
    abs,
    add,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    reciprocal,
    sqrt,
    square,
    sub,
)
from tensorgrad.ops.index import _norm_key, gather, index, index_select, narrow
from tensorgrad.ops.linear import linear, linear_relu
from tensorgrad.ops.loss import cross_entropy, mse_loss, multiclass_hinge_loss, nll_loss
from tensorgrad.ops.matmul import bmm, dot, matmul, mm
from tensorgrad.ops.reduce import amax, amin, argmax, argmin, logsumexp, max, mean, min, sum
from tensorgrad.ops.select import (
    clamp,
    clip,
    eq,
    ge,
    gt,
    le,
    logical_not,
    lt,
    masked_fill,
    ne,
    sign,
    where,
)
from tensorgrad.ops.shape import (
    cat,
    chunk,
    clone,
    contiguous,
    expand,
    expand_as,
    flatten,
    movedim,
    permute,
    reshape,
    reshape_as,
    split,
    squeeze,
    stack,
    t,
    transpose,
    unsqueeze,
    view,
    view_as,
)

table = registry.table      # tg.ops.table(): one record per public op

__all__ = [
    "abs",
    "add",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "bmm",
    "cast",
    "cat",
    "cdist",
    "chunk",
    "clamp",
    "clip",
    "clone",
    "contiguous",
    "cross_entropy",
    "div",
    "dot",
    "eq",
    "exp",
    "expand",
    "expand_as",
    "flatten",
    "gather",
    "ge",
    "gt",
    "index",
    "index_select",
    "le",
    "linear",
    "linear_relu",
    "log",
    "log_softmax",
    "logical_not",
    "logsumexp",
    "lt",
    "masked_fill",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mm",
    "movedim",
    "mse_loss",
    "mul",
    "multiclass_hinge_loss",
    "narrow",
    "ne",
    "neg",
    "nll_loss",
    "permute",
    "pow",
    "reciprocal",
    "relu",
    "reshape",
    "reshape_as",
    "sigmoid",
    "sign",
    "softmax",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "t",
    "tanh",
    "transpose",
    "unsqueeze",
    "view",
    "view_as",
    "where",
]


def _install():
    T = Tensor
    for name in ["abs", "add", "argmax", "argmin", "chunk", "clamp", "contiguous", "div", "eq",
                 "exp", "expand", "flatten", "gather", "ge", "gt", "le", "log", "log_softmax",
                 "logsumexp", "lt", "matmul", "max", "maximum", "mean", "min", "minimum", "mul",
                 "movedim", "narrow", "ne", "neg", "permute", "pow", "reciprocal", "relu",
                 "reshape", "sigmoid", "sign", "softmax", "split", "sqrt", "square", "squeeze",
                 "sub", "sum", "t", "tanh", "transpose", "unsqueeze", "view", "clone", "amax",
                 "amin", "bmm", "clip", "dot", "expand_as", "index_select", "masked_fill",
                 "mm", "reshape_as", "view_as"]:
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

    def _T(self):
        """Reverse all dimensions (a view)."""
        return permute(self, tuple(range(self._data.ndim - 1, -1, -1)))

    def _mT(self):
        """Transpose the last two dimensions (a view)."""
        return transpose(self, -2, -1)

    T.T = property(_T)
    T.mT = property(_mT)

    def __setitem__(self, key, value):
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
