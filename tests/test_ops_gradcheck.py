"""Every op's gradient, proved: gradcheck and gradgradcheck (float64 central differences).

Each op family declares its sample inputs next to itself (``ELEMENTWISE``, ``ACTIVATION``,
``REDUCE``, ``SHAPE``, ``INDEXING``, ``BLAS``, ``OPERATORS``) and one parametrised test runs
them all, through both first and second derivatives. Shapes cover 0-d, vectors, matrices,
broadcast pairs ([3,1] with [1,4], [4] with [2,3,4], [] with [2,3]), non-contiguous operands
(built inside the function: transposes and step slices, because gradcheck copies its inputs)
and the batched / 1-D matmul cases. Random inputs avoid the kinks (|x| >= 0.25 for abs and
relu, positive bases for log/sqrt/pow, distinct values for max/min); the values AT the kinks
are documented conventions, tested separately at the end of this file.
"""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.testing import gradcheck, gradgradcheck


class S:
    """One sample: ``fn(*inputs)`` with inputs drawn from ``shapes`` in a value ``domain``.

    domain: "any" normal values; "away" |x| in [0.25, 2] with random sign (away from kinks);
    "pos" values in [0.5, 2] (log, sqrt, fractional powers).
    """

    def __init__(self, name, fn, *shapes, domain="any", gg=True):
        self.name = name
        self.fn = fn
        self.shapes = shapes
        self.domain = domain if isinstance(domain, tuple) else (domain,) * len(shapes)
        self.gg = gg

    def inputs(self, seed):
        rng = np.random.default_rng(seed)
        out = []
        for shape, dom in zip(self.shapes, self.domain):
            if dom == "pos":
                a = rng.uniform(0.5, 2.0, shape)
            elif dom == "away":
                a = rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
            else:
                a = rng.standard_normal(shape)
            out.append(tg.tensor(np.asarray(a, np.float64), requires_grad=True))
        return tuple(out)

    def param(self):
        return pytest.param(self, id=self.name)


BROADCAST_PAIRS = [((3, 4), (3, 4)), ((), ()), ((5,), (5,)), ((3, 1), (1, 4)),
                   ((4,), (2, 3, 4)), ((), (2, 3)), ((2, 3), ())]


def _shape_id(s):
    return "x".join(map(str, s)) or "0d"


def _pairs(name, fn, domain="any"):
    return [S(f"{name}-{_shape_id(a)}-{_shape_id(b)}", fn, a, b, domain=domain)
            for a, b in BROADCAST_PAIRS]


def _unary(name, fn, domain="any"):
    return [S(f"{name}-0d", fn, (), domain=domain),
            S(f"{name}-vec", fn, (6,), domain=domain),
            S(f"{name}-mat", fn, (3, 4), domain=domain),
            S(f"{name}-T", lambda x: fn(x.T), (4, 3), domain=domain),
            S(f"{name}-step", lambda x: fn(x[::2, 1::2]), (5, 6), domain=domain)]


# ----------------------------------------------------------------------------------------------
# elementwise
# ----------------------------------------------------------------------------------------------
ELEMENTWISE = (
    _pairs("add", tg.add) + _pairs("sub", tg.sub) + _pairs("mul", tg.mul)
    + _pairs("div", tg.div, domain=("any", "away"))
    + _pairs("pow", tg.pow, domain=("pos", "any"))
    + _pairs("maximum", tg.maximum) + _pairs("minimum", tg.minimum)
    + _unary("neg", tg.neg) + _unary("exp", tg.exp) + _unary("log", tg.log, "pos")
    + _unary("sqrt", tg.sqrt, "pos") + _unary("abs", tg.abs, "away")
    + [
        S("add-alpha", lambda x, y: tg.add(x, y, alpha=-2.5), (3, 1), (4,)),
        S("sub-alpha", lambda x, y: tg.sub(x, y, alpha=0.5), (2, 3), (3,)),
        S("add-T-step", lambda x, y: tg.add(x.T, y[::2]), (4, 3), (6, 4)),
        S("mul-T-T", lambda x, y: tg.mul(x.T, y.T), (4, 3), (4, 3)),
        S("mul-step-bcast", lambda x, y: tg.mul(x[:, ::2], y), (3, 8), (3, 1)),
        S("div-T", lambda x, y: tg.div(x.T, y), (4, 3), (3, 4), domain=("any", "away")),
        S("maximum-T", lambda x, y: tg.maximum(x.T, y[::-1]), (4, 3), (3, 4)),
        S("mul-scalar", lambda x: tg.mul(x, 3.5), (3, 4)),
        S("rmul-scalar", lambda x: tg.mul(-1.5, x), (3, 4)),
        S("div-scalar", lambda x: tg.div(x, 4.0), (3,)),
        S("rdiv-scalar", lambda x: tg.div(2.0, x), (3, 2), domain="away"),
        S("sub-rscalar", lambda x: tg.sub(1.0, x), (2, 2)),
        S("pow-2", lambda x: tg.pow(x, 2), (3, 4)),
        S("pow-3-neg-base", lambda x: tg.pow(x, 3), (5,), domain="away"),
        S("pow-float", lambda x: tg.pow(x, 1.7), (3, 4), domain="pos"),
        S("pow-neg", lambda x: tg.pow(x, -0.5), (4,), domain="pos"),
        S("pow-0", lambda x: tg.pow(x, 0) * x, (4,), domain="pos"),
        S("rpow-scalar", lambda x: tg.pow(2.0, x), (3, 4)),
        S("maximum-scalar", lambda x: tg.maximum(x, 0.1), (3, 4), domain="away"),
        S("minimum-rscalar", lambda x: tg.minimum(0.1, x), (3, 4), domain="away"),
        S("clamp-both", lambda x: tg.clamp(x, -0.9, 0.8), (4, 5)),
        S("clamp-min", lambda x: tg.clamp(x, min=0.1), (6,)),
        S("clamp-max", lambda x: tg.clamp(x, max=-0.1), (2, 3)),
        S("clamp-0d", lambda x: tg.clamp(x, -1.0, 1.0), ()),
        S("clamp-T", lambda x: tg.clamp(x.T, -0.5, 0.5), (3, 4)),
        S("clamp-tensor-bounds", lambda x, lo: tg.clamp(x, min=lo), (3, 4), (4,)),
        S("clamp-tensor-both", lambda x, lo: tg.clamp(x, lo, lo + 1.0), (3, 1), (4,)),
        S("clamp-tensor-max-number-min", lambda x, hi: tg.clamp(x, -0.5, hi), (2, 3), ()),
        S("clamp-min-above-max", lambda x: tg.clamp(x, 0.5, -0.5) * x, (3, 4)),
        S("clip", lambda x: tg.clip(x, -0.9, 0.8), (4, 5)),
        S("clip-method", lambda x: x.clip(min=0.1) * x, (6,)),
        S("where-same", lambda x, y: tg.where(x > y, x, y), (3, 4), (3, 4)),
        S("where-bcast", lambda x, y: tg.where(tg.tensor([[True], [False], [True]]), x, y),
          (1, 4), ()),
        S("where-cond-bcast", lambda x, y: tg.where(tg.tensor([True, False, True, False]), x, y),
          (3, 1), (2, 3, 4)),
        S("where-scalar-other", lambda x: tg.where(x > 0, x, 0.0), (4, 3)),
        S("where-T", lambda x, y: tg.where(x.T > 0, x.T, y), (4, 3), (3, 4)),
    ]
)


# ----------------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------------
ACTIVATION = (
    _unary("relu", tg.relu, "away") + _unary("sigmoid", tg.sigmoid) + _unary("tanh", tg.tanh)
    + [
        S("softmax-vec", lambda x: tg.softmax(x, 0), (5,)),
        S("softmax-last", lambda x: tg.softmax(x, -1), (3, 4)),
        S("softmax-dim0", lambda x: tg.softmax(x, 0), (3, 4)),
        S("softmax-3d-mid", lambda x: tg.softmax(x, 1), (2, 3, 4)),
        S("softmax-T", lambda x: tg.softmax(x.T, -1), (4, 3)),
        S("softmax-step", lambda x: tg.softmax(x[::2], 1), (5, 3)),
        S("softmax-0d", lambda x: tg.softmax(x, 0), ()),
        S("log_softmax-vec", lambda x: tg.log_softmax(x, 0), (5,)),
        S("log_softmax-last", lambda x: tg.log_softmax(x, -1), (3, 4)),
        S("log_softmax-dim0", lambda x: tg.log_softmax(x, 0), (3, 4)),
        S("log_softmax-3d-mid", lambda x: tg.log_softmax(x, 1), (2, 3, 4)),
        S("log_softmax-T", lambda x: tg.log_softmax(x.T, 0), (4, 3)),
        S("log_softmax-0d", lambda x: tg.log_softmax(x, 0), ()),
        S("sigmoid-large", lambda x: tg.sigmoid(x * 8.0), (6,)),
    ]
)


# ----------------------------------------------------------------------------------------------
# reductions
# ----------------------------------------------------------------------------------------------
def _first(fn):
    """The values of a (values, indices) reduction: the differentiable output."""
    return lambda x: fn(x)[0]


REDUCE = [
    S("sum-all", lambda x: tg.sum(x), (3, 4)),
    S("sum-0d", lambda x: tg.sum(x), ()),
    S("sum-0d-dim", lambda x: tg.sum(x, 0), ()),
    S("sum-dim0", lambda x: tg.sum(x, 0), (3, 4)),
    S("sum-dim1-keep", lambda x: tg.sum(x, 1, keepdim=True), (3, 4)),
    S("sum-dims-02", lambda x: tg.sum(x, (0, 2)), (2, 3, 4)),
    S("sum-neg-dim", lambda x: tg.sum(x, -1), (2, 3, 4)),
    S("sum-T", lambda x: tg.sum(x.T, 1), (3, 4)),
    S("sum-step-keep", lambda x: tg.sum(x[:, ::2], (0, 1), keepdim=True), (3, 6)),
    S("sum-empty-dims-is-all", lambda x: tg.sum(x, ()), (2, 3)),
    S("mean-0d-dim", lambda x: tg.mean(x, 0), ()),
    S("mean-all", lambda x: tg.mean(x), (3, 4)),
    S("mean-0d", lambda x: tg.mean(x), ()),
    S("mean-dim", lambda x: tg.mean(x, 1), (3, 4)),
    S("mean-dims-keep", lambda x: tg.mean(x, (0, 2), keepdim=True), (2, 3, 4)),
    S("mean-T", lambda x: tg.mean(x.T, 0), (3, 4)),
    S("max-all", lambda x: tg.max(x), (3, 4)),
    S("max-0d", lambda x: tg.max(x), ()),
    S("max-0d-dim", _first(lambda x: tg.max(x, 0)), ()),
    S("min-0d-dim-keep", _first(lambda x: tg.min(x, -1, keepdim=True)), ()),
    S("max-dim0", _first(lambda x: tg.max(x, 0)), (3, 4)),
    S("max-dim1-keep", _first(lambda x: tg.max(x, 1, keepdim=True)), (3, 4)),
    S("max-3d-mid", _first(lambda x: tg.max(x, 1)), (2, 3, 4)),
    S("max-T", _first(lambda x: tg.max(x.T, -1)), (3, 4)),
    S("max-step", lambda x: tg.max(x[::2, ::3]), (5, 6)),
    S("min-all", lambda x: tg.min(x), (3, 4)),
    S("min-dim0", _first(lambda x: tg.min(x, 0)), (3, 4)),
    S("min-dim-keep", _first(lambda x: tg.min(x, -1, keepdim=True)), (2, 3, 4)),
    S("min-T", _first(lambda x: tg.min(x.T, 0)), (3, 4)),
    S("max-binary", lambda x, y: tg.max(x, y), (3, 1), (1, 4)),
    S("min-binary", lambda x, y: tg.min(x, y), (4,), (2, 3, 4)),
    S("logsumexp-vec", lambda x: tg.logsumexp(x, 0), (5,)),
    S("logsumexp-0d", lambda x: tg.logsumexp(x, 0), ()),
    S("logsumexp-dim1", lambda x: tg.logsumexp(x, 1), (3, 4)),
    S("logsumexp-dim0-keep", lambda x: tg.logsumexp(x, 0, keepdim=True), (3, 4)),
    S("logsumexp-3d-mid", lambda x: tg.logsumexp(x, 1), (2, 3, 4)),
    S("logsumexp-T", lambda x: tg.logsumexp(x.T, -1), (3, 4)),
    S("logsumexp-large", lambda x: tg.logsumexp(x * 300.0, 1), (2, 3)),
    S("logsumexp-dims", lambda x: tg.logsumexp(x, (0, 2)), (2, 3, 4)),
    S("logsumexp-dims-keep-T", lambda x: x.transpose(0, 2).logsumexp((2, 1), True), (2, 3, 4)),
    S("amax-dim", lambda x: tg.amax(x, 1), (3, 4)),
    S("amax-dims-keep", lambda x: x.amax((0, 2), keepdim=True), (2, 3, 4)),
    S("amax-all-T", lambda x: tg.amax(x.T), (3, 4)),
    S("amax-0d", lambda x: tg.amax(x), ()),
    S("amin-dim", lambda x: tg.amin(x, -1), (2, 3, 4)),
    S("amin-dims", lambda x: x[:, ::2].amin((1, 0)), (3, 6)),
    S("amax-ties", lambda x: tg.amax(tg.cat([x, x], 1), 1), (3, 2)),
]


# ----------------------------------------------------------------------------------------------
# shape ops
# ----------------------------------------------------------------------------------------------
IDX_REPEAT = tg.tensor([[0, 2, 2, 1], [1, 1, 1, 0], [3, 0, 0, 3]])   # int64, repeats

SHAPE = [
    S("transpose", lambda x: tg.transpose(x, 0, 1), (3, 4)),
    S("transpose-3d", lambda x: tg.transpose(x, 0, 2), (2, 3, 4)),
    S("transpose-method", lambda x: x.transpose(-1, -2) * x.T, (3, 3)),
    S("T-attr", lambda x: x.T @ x, (3, 2)),
    S("permute", lambda x: tg.permute(x, (2, 0, 1)), (2, 3, 4)),
    S("permute-varargs", lambda x: x.permute(1, 2, 0) * 2.0, (2, 3, 4)),
    S("squeeze-all", lambda x: tg.squeeze(x), (1, 3, 1, 2)),
    S("squeeze-dim", lambda x: tg.squeeze(x, 2), (1, 3, 1, 2)),
    S("squeeze-T", lambda x: tg.squeeze(x.T, 0), (3, 1)),
    S("unsqueeze-0", lambda x: tg.unsqueeze(x, 0), (3, 4)),
    S("unsqueeze-neg", lambda x: tg.unsqueeze(x, -1), (3, 4)),
    S("unsqueeze-T", lambda x: tg.unsqueeze(x.T, 1), (3, 4)),
    S("unsqueeze-0d", lambda x: tg.unsqueeze(x, 0), ()),
    S("expand", lambda x: tg.expand(x, 2, 3, 4), (3, 1)),
    S("expand-minus1", lambda x: x.expand(-1, 5), (3, 1)),
    S("expand-0d", lambda x: tg.expand(x, (2, 3)), ()),
    S("expand-then-mul", lambda x: x.expand(4, 3) * x.expand(4, 3), (3,)),
    S("view", lambda x: x.view(4, 3), (3, 4)),
    S("view-minus1", lambda x: x.view(-1), (2, 3, 2)),
    S("view-0d", lambda x: x.view(1, 1), ()),
    S("reshape-contig", lambda x: tg.reshape(x, (2, 6)), (3, 4)),
    S("reshape-T-copy", lambda x: x.T.reshape(12), (3, 4)),
    S("reshape-step", lambda x: x[:, ::2].reshape(-1, 2), (4, 4)),
    S("reshape-to-0d", lambda x: x.reshape(()), (1,)),
    S("flatten", lambda x: tg.flatten(x, 1), (2, 3, 4)),
    S("chunk-even", lambda x: tg.chunk(x, 2, 0), (4, 3)),
    S("chunk-uneven", lambda x: tg.chunk(x, 3, 1), (2, 7)),
    S("chunk-partial-use", lambda x: tg.chunk(x, 3, 0)[1] * 2.0, (6, 2)),
    S("chunk-T", lambda x: x.T.chunk(2, 0), (3, 4)),
    S("split-size", lambda x: tg.split(x, 2, 1), (3, 5)),
    S("split-sections", lambda x: tg.split(x, [1, 3, 2], 0), (6, 2)),
    S("split-method", lambda x: x.split([2, 2], -1)[0], (3, 4)),
    S("cat-dim0", lambda x, y: tg.cat([x, y], 0), (2, 3), (4, 3)),
    S("cat-dim1", lambda x, y: tg.cat([x, y, x], 1), (2, 3), (2, 1)),
    S("cat-1d", lambda x, y: tg.cat((x, y)), (3,), (2,)),
    S("cat-T", lambda x, y: tg.cat([x.T, y[::2]], -1), (3, 2), (4, 3)),
    S("stack-0", lambda x, y: tg.stack([x, y]), (3, 4), (3, 4)),
    S("stack-last", lambda x, y: tg.stack([x, y, x], -1), (3,), (3,)),
    S("stack-0d", lambda x, y: tg.stack([x, y], 0), (), ()),
    S("stack-T", lambda x, y: tg.stack([x.T, y], 1), (4, 3), (3, 4)),
    S("gather-dim1-repeat", lambda x: tg.gather(x, 1, IDX_REPEAT), (3, 5)),
    S("gather-dim0-repeat", lambda x: tg.gather(x, 0, IDX_REPEAT), (4, 4)),
    S("gather-smaller-index", lambda x: tg.gather(x, 1, tg.tensor([[0], [2]])), (3, 4)),
    S("gather-T", lambda x: x.T.gather(0, IDX_REPEAT), (4, 4)),
    S("contiguous-T", lambda x: x.T.contiguous() * x.T, (3, 4)),
    S("clone", lambda x: tg.clone(x) * x, (3,)),
    S("expand_as", lambda x, y: x.expand_as(y) * y, (3, 1), (2, 3, 4)),
    S("view_as", lambda x, y: x.view_as(y) * y, (3, 4), (4, 3)),
    S("reshape_as-T", lambda x, y: x.T.reshape_as(y) * y, (3, 4), (2, 6)),
    S("flatten-mid", lambda x: x.flatten(1, 2), (2, 3, 4, 2)),
]


# ----------------------------------------------------------------------------------------------
# indexing
# ----------------------------------------------------------------------------------------------
INDEXING = [
    S("int", lambda x: x[1], (3, 4)),
    S("neg-int", lambda x: x[-1, -2], (3, 4)),
    S("slice", lambda x: x[1:3], (4, 3)),
    S("slice-step", lambda x: x[::2, 1::2], (5, 6)),
    S("slice-negative-step", lambda x: x[::-1, ::-2], (3, 5)),
    S("ellipsis-none", lambda x: x[None, ..., 1], (2, 3, 4)),
    S("int-array", lambda x: x[tg.tensor([2, 0, 1])], (3, 4)),
    S("int-array-repeat", lambda x: x[tg.tensor([1, 1, 0, 1, 3])], (4, 2)),
    S("list-repeat", lambda x: x[[0, 0, 2]], (3,)),
    S("cols-repeat", lambda x: x[:, [3, 1, 3, 3]], (2, 4)),
    S("pair-arrays", lambda x: x[tg.tensor([0, 2, 2]), tg.tensor([1, 1, 0])], (3, 3)),
    S("2d-index-array", lambda x: x[tg.tensor([[0, 1], [1, 1]])], (2, 3)),
    S("bool-mask", lambda x: x[x > 0], (4, 4)),
    S("numpy-index", lambda x: x[np.array([1, 1, 0])], (2, 2)),
    S("index-T", lambda x: x.T[[0, 0, 2]], (3, 3)),
    S("narrow", lambda x: tg.narrow(x, 1, 1, 2), (3, 4)),
    S("index-of-index", lambda x: x[1:][[0, 0]][:, 1], (3, 2)),
    S("narrow-negative-start", lambda x: x.narrow(0, -2, 2), (4, 3)),
    S("index_select-repeat", lambda x: tg.index_select(x, 1, tg.tensor([3, 0, 3, 3])), (2, 4)),
    S("index_select-dim0-T", lambda x: x.T.index_select(0, [1, 1, 0]), (3, 2)),
    S("masked_fill", lambda x: x.masked_fill(x > 0, 2.0) * x, (3, 4)),
    S("masked_fill-bcast-mask", lambda x: tg.masked_fill(x, tg.tensor([True, False, True]),
                                                         -1.0), (2, 3)),
    S("masked_fill-tensor-value", lambda x, v: x.masked_fill(x < 0, v) * v, (3, 4), ()),
]


# ----------------------------------------------------------------------------------------------
# matmul
# ----------------------------------------------------------------------------------------------
BLAS = [
    S("mm", tg.matmul, (3, 4), (4, 2)),
    S("mm-1x1", tg.matmul, (1, 1), (1, 1)),
    S("vec-vec", tg.matmul, (4,), (4,)),
    S("vec-mat", tg.matmul, (4,), (4, 3)),
    S("mat-vec", tg.matmul, (3, 4), (4,)),
    S("mm-T-a", lambda a, b: a.T @ b, (4, 3), (4, 2)),
    S("mm-T-b", lambda a, b: a @ b.T, (3, 4), (2, 4)),
    S("mm-T-both", lambda a, b: a.T @ b.T, (4, 3), (2, 4)),
    S("mm-step", lambda a, b: a[::2] @ b[:, ::2], (6, 3), (3, 4)),
    S("bmm", tg.matmul, (2, 3, 4), (2, 4, 5)),
    S("bmm-bcast-batch-a", tg.matmul, (1, 3, 4), (2, 4, 2)),
    S("bmm-bcast-batch-b", tg.matmul, (3, 2, 4), (1, 4, 2)),
    S("batch-4d-bcast", tg.matmul, (2, 1, 2, 3), (3, 3, 2)),
    S("batch-times-mat", tg.matmul, (2, 3, 4), (4, 2)),
    S("mat-times-batch", tg.matmul, (3, 4), (2, 4, 2)),
    S("batch-times-vec", tg.matmul, (2, 3, 4), (4,)),
    S("vec-times-batch", tg.matmul, (4,), (2, 4, 3)),
    S("bmm-T", lambda a, b: a.mT @ b, (2, 4, 3), (2, 4, 2)),
    S("mm-method", lambda a, b: a.matmul(b), (2, 3), (3, 2)),
    S("mm-func", tg.mm, (2, 3), (3, 2)),
    S("bmm-func", tg.bmm, (2, 2, 3), (2, 3, 2)),
    S("dot-func", tg.dot, (5,), (5,)),
    S("mm-tensor-method", lambda a, b: a.mm(b), (2, 3), (3, 4)),
    S("bmm-tensor-method", lambda a, b: a.bmm(b), (2, 2, 3), (2, 3, 2)),
    S("dot-tensor-method", lambda a, b: a.dot(b), (4,), (4,)),
    S("bmm-empty-inner", lambda a, b: tg.bmm(a[:, :, :0], b[:, :0]) + a.sum(), (2, 2, 3),
      (2, 3, 2)),
]


# ----------------------------------------------------------------------------------------------
# Python operators and compositions
# ----------------------------------------------------------------------------------------------
OPERATORS = [
    S("op-add", lambda x, y: x + y, (3, 1), (1, 4)),
    S("op-radd", lambda x: 2.0 + x, (3,)),
    S("op-sub", lambda x, y: x - y, (4,), (2, 3, 4)),
    S("op-rsub", lambda x: 2.0 - x, (2, 2)),
    S("op-mul", lambda x, y: x * y, (), (2, 3)),
    S("op-rmul", lambda x: 3 * x, (3,)),
    S("op-div", lambda x, y: x / y, (2, 3), (3,), domain=("any", "away")),
    S("op-rdiv", lambda x: 1.0 / x, (3,), domain="away"),
    S("op-pow", lambda x, y: x ** y, (2, 3), (3,), domain=("pos", "any")),
    S("op-pow-int", lambda x: x ** 3, (2, 3)),
    S("op-rpow", lambda x: 3.0 ** x, (4,)),
    S("op-matmul", lambda x, y: x @ y, (2, 3), (3, 2)),
    S("op-neg", lambda x: -x, (2, 3)),
    S("op-pos", lambda x: +x * x, (2,)),
    S("op-abs", lambda x: abs(x), (3,), domain="away"),
    S("op-iadd-rebind", lambda x, y: _iadd(x, y), (2, 3), (3,)),
    S("sigmoid-neuron", lambda w, x, b: tg.sigmoid(w @ x + b), (2,), (2,), ()),
    S("softmax-loss", lambda s: -tg.log_softmax(s, 1)[tg.arange(3), tg.tensor([0, 2, 1])].mean(),
      (3, 4)),
    S("two-layer", lambda x, w1, w2: tg.relu(x @ w1) @ w2, (4, 3), (3, 5), (5, 2),
      domain=("away", "away", "any")),
    S("diamond", lambda a: (a + a) * (a + a), (3,)),
    S("fan-out-many", lambda a: a * a.exp() + a.sum() * a - a.T.mean(), (2, 2)),
]


def _iadd(x, y):
    z = x
    z += y          # no __iadd__: Python rebinds z = z + y, recorded normally
    return z


ALL = ELEMENTWISE + ACTIVATION + REDUCE + SHAPE + INDEXING + BLAS + OPERATORS


@pytest.mark.parametrize("sample", [s.param() for s in ALL])
def test_gradcheck(sample):
    assert gradcheck(sample.fn, sample.inputs(seed=len(sample.name)))


@pytest.mark.parametrize("sample", [s.param() for s in ALL if s.gg])
def test_gradgradcheck(sample):
    assert gradgradcheck(sample.fn, sample.inputs(seed=len(sample.name) + 7))




def _projected(outs, seed=0):
    rng = np.random.default_rng(seed)
    outs = outs if isinstance(outs, tuple) else (outs,)
    total = None
    for o in outs:
        if o.requires_grad:
            term = (o * tg.tensor(rng.standard_normal(o.shape))).sum()
            total = term if total is None else total + term
    return total


# x[x > 0] has a data-dependent shape: the replayed mask selects a different number of
# elements, which no fixed downstream graph can absorb (replay raises, naming the op).
DATA_DEPENDENT_SHAPE = {"bool-mask"}


@pytest.mark.parametrize("sample", [s.param() for s in ALL
                                    if s.name not in DATA_DEPENDENT_SHAPE])
def test_graph_replay_matches_a_fresh_run(sample):
    """tg.Graph(root).forward() after the leaves change in place gives the values and
    gradients of re-running the Python code (every op must be replayable)."""
    xs = sample.inputs(seed=1)
    graph = tg.Graph(_projected(sample.fn(*xs)))
    with tg.no_grad():
        for x, new in zip(xs, sample.inputs(seed=2)):
            x.copy_(new)
    replayed = graph.forward().item()
    graph.backward()
    fresh_xs = [tg.tensor(x.numpy(), dtype=tg.float64, requires_grad=True) for x in xs]
    fresh = _projected(sample.fn(*fresh_xs))
    fresh.backward()
    assert replayed == pytest.approx(fresh.item(), rel=1e-12, abs=1e-12)
    for x, f in zip(xs, fresh_xs):
        if f.grad is None:
            assert x.grad is None or not np.any(x.grad.numpy())
        else:
            np.testing.assert_allclose(x.grad.numpy(), f.grad.numpy(), rtol=1e-10, atol=1e-12)


def _summed(outs):
    outs = outs if isinstance(outs, tuple) else (outs,)
    return tg.stack([o.sum() for o in outs if o.requires_grad]).sum()


@pytest.mark.parametrize("sample", [s.param() for s in ALL])
def test_float32_gradients_stay_float32_and_match_float64(sample):
    """The same VJPs in float32: no silent promotion, values close to the float64 ones.
    The root is a plain sum, so every backward also meets a stride-0 (expanded) gradient."""
    x64 = sample.inputs(seed=3)
    x32 = [tg.tensor(x.numpy(), dtype=tg.float32, requires_grad=True) for x in x64]
    out = sample.fn(*x32)
    for o in out if isinstance(out, tuple) else (out,):
        assert o.dtype == tg.float32
    _summed(out).backward()
    _summed(sample.fn(*x64)).backward()
    for a, b in zip(x32, x64):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            assert a.grad.dtype == tg.float32
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_every_api_op_has_samples():
    """API.md's op list: each name appears in at least one sample (guards against gaps)."""
    names = {s.name.split("-")[0] for s in ALL}
    api = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "sigmoid",
           "tanh", "relu", "maximum", "minimum", "clamp", "where", "sum", "mean", "max", "min",
           "logsumexp", "softmax", "log_softmax", "transpose", "permute", "squeeze",
           "unsqueeze", "expand", "chunk", "split", "cat", "stack", "gather", "view",
           "reshape"]
    assert set(api) <= names, sorted(set(api) - names)
    assert any(s.name.startswith(("mm", "bmm", "vec", "batch")) for s in BLAS)


def test_gradcheck_catches_a_wrong_gradient():
    """The checker itself must fail on a wrong VJP (so a passing run means something)."""

    class BadSquare(tg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x          # should be 2 g x

    x = tg.tensor([0.5, -1.0, 2.0], dtype=tg.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="input 0"):
        gradcheck(BadSquare.apply, (x,))


# ----------------------------------------------------------------------------------------------
# documented values at the kinks
# ----------------------------------------------------------------------------------------------
def _grad_of(fn, *vals, upstream=None):
    xs = [tg.tensor(v, dtype=tg.float64, requires_grad=True) for v in vals]
    out = fn(*xs)
    g = tg.ones_like(out) if upstream is None else tg.tensor(upstream, dtype=tg.float64)
    return [t.numpy() for t in tg.grad(out, xs, grad_outputs=g)]


def test_relu_gradient_at_zero_is_zero():
    (gx,) = _grad_of(tg.relu, [-1.0, 0.0, 2.0, -0.0])
    np.testing.assert_array_equal(gx, [0.0, 0.0, 1.0, 0.0])


def test_relu_lecture_example():
    (gx,) = _grad_of(tg.relu, [1.0, -2.0, 3.0, -1.0], upstream=[4.0, -1.0, 5.0, 9.0])
    np.testing.assert_array_equal(gx, [4.0, 0.0, 5.0, 0.0])


def test_abs_gradient_at_zero_is_zero():
    (gx,) = _grad_of(tg.abs, [-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(gx, [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("op", [tg.maximum, tg.minimum])
def test_maximum_minimum_split_ties_evenly(op):
    gx, gy = _grad_of(op, [1.0, 2.0, 3.0], [1.0, 5.0, -3.0], upstream=[2.0, 2.0, 2.0])
    win = np.array([0.0, 1.0, 0.0]) if op is tg.maximum else np.array([0.0, 0.0, 1.0])
    np.testing.assert_array_equal(gy[1:], 2.0 * win[1:])
    np.testing.assert_array_equal(gx[1:], 2.0 * (1 - win[1:]))
    assert gx[0] == gy[0] == 1.0


def test_maximum_tie_with_scalar_and_broadcast():
    (gx,) = _grad_of(lambda x: tg.maximum(x, 0.0), [0.0, 1.0, -1.0])
    np.testing.assert_array_equal(gx, [0.5, 1.0, 0.0])
    gx, gy = _grad_of(tg.maximum, [[1.0], [2.0]], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(gx, [[2.0], [3.0]])      # 0.5 + 0.5 + 1, then 1 + 1 + 1
    np.testing.assert_array_equal(gy, [0.5, 0.5, 0.0])


@pytest.mark.parametrize("op", [tg.max, tg.min])
def test_max_min_over_ties_route_to_first_index(op):
    (gx,) = _grad_of(lambda x: op(x), [1.0, 3.0, 3.0, -3.0, 3.0] if op is tg.max
                     else [1.0, -3.0, 3.0, -3.0, -3.0])
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0, 0.0, 0.0])
    rows = [[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]] if op is tg.max else [[1.0, 1.0, 2.0],
                                                                    [5.0, 0.0, 0.0]]
    (gx,) = _grad_of(lambda x: op(x, 1)[0], rows)
    expected = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    np.testing.assert_array_equal(gx, expected)
    (gx,) = _grad_of(lambda x: op(x, 0)[0], [[7.0, 1.0], [7.0, 1.0]])
    np.testing.assert_array_equal(gx, [[1.0, 1.0], [0.0, 0.0]])


def test_max_indices_match_argmax_and_carry_no_grad():
    x = tg.tensor([[1.0, 4.0, 4.0], [9.0, -1.0, 9.0]], requires_grad=True)
    values, indices = tg.max(x, 1)
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert not indices.requires_grad
    assert values.requires_grad


def test_clamp_at_the_boundary_passes_the_gradient():
    (gx,) = _grad_of(lambda x: tg.clamp(x, -1.0, 1.0), [-2.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(gx, [0.0, 1.0, 1.0, 1.0, 0.0])
    (gx,) = _grad_of(lambda x: x.clamp(min=0.0), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(gx, [0.0, 1.0, 1.0])


def test_clamp_with_tensor_bounds_gives_the_boundary_gradient_to_x():
    gx, glo = _grad_of(lambda x, lo: tg.clamp(x, min=lo), [0.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(gx, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(glo, [1.0, 0.0, 0.0])
    gx, ghi = _grad_of(lambda x, hi: tg.clamp(x, max=hi), [0.0, 1.0, 2.0], 1.0)
    np.testing.assert_array_equal(gx, [1.0, 1.0, 0.0])
    assert ghi == 1.0


def test_pow_gradients_at_zero_base_and_zero_exponent_are_finite():
    gx, gy = _grad_of(tg.pow, [0.0, 0.0, 2.0, 0.0], [2.0, 0.0, 3.0, 0.5])
    np.testing.assert_array_equal(gx[:3], [0.0, 0.0, 12.0])
    assert np.isinf(gx[3])                               # d/dx sqrt(x) at 0: the true value
    np.testing.assert_allclose(gy, [0.0, 0.0, 8.0 * np.log(2.0), 0.0], rtol=1e-15)
    (gy,) = _grad_of(lambda y: tg.pow(0.0, y), [2.0, 0.0])
    np.testing.assert_array_equal(gy, [0.0, 0.0])
    # the second derivatives through those masks stay finite too
    x = tg.tensor([0.0, 2.0], dtype=tg.float64, requires_grad=True)
    y = tg.tensor([0.0, 3.0], dtype=tg.float64, requires_grad=True)
    gx, gy = tg.grad((x ** y).sum(), (x, y), create_graph=True)
    hx, hy = tg.grad((gx + gy).sum(), (x, y))
    assert np.all(np.isfinite(hx.numpy())) and np.all(np.isfinite(hy.numpy()))
    np.testing.assert_allclose(hx.numpy()[1], 3 * 2 * 2.0 + (8 * np.log(2) * 3 / 2 + 4),
                               rtol=1e-12)


def test_sqrt_of_zero_gives_inf_gradient_like_the_formula():
    (gx,) = _grad_of(tg.sqrt, [0.0, 4.0])
    assert np.isinf(gx[0]) and gx[1] == 0.25


# ----------------------------------------------------------------------------------------------
# gate patterns and tg.grad
# ----------------------------------------------------------------------------------------------
def test_diamond_fan_out_sums():
    a = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    b = a + a
    c = b * b
    c.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 8.0 * a.numpy())   # c = 4a², dc/da = 8a


def test_value_used_in_many_places():
    x = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    y = x * x + x.exp() + tg.sigmoid(x) - 3.0 * x + (x ** 2) / x
    y.backward()
    s = 1 / (1 + np.exp(-1.5))
    np.testing.assert_allclose(x.grad.item(), 2 * 1.5 + np.exp(1.5) + s * (1 - s) - 3 + 1,
                               rtol=1e-12)


def test_mission_add_mul_gates():
    x, y, z = (tg.tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


def test_mission_matmul_example():
    x = tg.tensor([[2.0, 1, -3], [-3, 4, 2]], requires_grad=True)
    w = tg.tensor([[3.0, 2, 1, -1], [2, 1, 3, 2], [3, 2, 1, -2]], requires_grad=True)
    y = x @ w
    np.testing.assert_array_equal(y.numpy(), [[-1, -1, 2, 6], [5, 2, 11, 7]])
    y.backward(tg.tensor([[2.0, 3, -3, 9], [-8, 1, 4, 6]]))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 16, -9], [-24, 9, -30]])
    np.testing.assert_array_equal(w.grad.numpy(), [[28, 3, -18, 0], [-30, 7, 13, 33],
                                                   [-22, -7, 17, -15]])


def test_grad_does_not_touch_dot_grad():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, -1.0], requires_grad=True)
    out = (a * w).sum() + (a * a).sum()
    ga, gw = tg.grad(out, (a, w))
    np.testing.assert_array_equal(ga.numpy(), [5.0, 3.0])
    np.testing.assert_array_equal(gw.numpy(), [1.0, 2.0])
    assert a.grad is None and w.grad is None


def test_grad_with_create_graph_gives_hessian_vector_product():
    x = tg.tensor([0.3, -0.7, 1.1], dtype=tg.float64, requires_grad=True)
    (g,) = tg.grad((x ** 3).sum(), x, create_graph=True)
    (h,) = tg.grad((g * tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64)).sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy() * [1.0, 2.0, 3.0], rtol=1e-12)
    assert x.grad is None


def test_gradients_accumulate_across_backward_calls():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0 + 2.0, 3.0 + 4.0])


def test_broadcast_gradient_has_input_shape_and_dtype():
    a = tg.randn(3, 1, dtype=tg.float32, requires_grad=True)
    b = tg.randn(4, dtype=tg.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and a.grad.dtype == tg.float32
    assert b.grad.shape == (4,) and b.grad.dtype == tg.float64
    np.testing.assert_allclose(a.grad.numpy()[:, 0], np.full(3, b.numpy().sum()), rtol=1e-6)


@pytest.mark.parametrize("fn", [lambda x, y: x ** y, lambda x, y: tg.pow(x, y) * x,
                                lambda x, y: (x ** y) * (x + y)])
def test_pow_second_derivative_at_an_exponent_of_exactly_zero(fn):
    """d/dy [y x^(y-1)] = x^(y-1) (1 + y log x) is 1/x at y == 0 (finite differences agree;
    torch's masked gradient gives 0 there)."""
    x = tg.tensor([0.7, 1.3, 2.0, 0.5], dtype=tg.float64, requires_grad=True)
    y = tg.tensor([0.0, 0.0, 1.0, 2.0], dtype=tg.float64, requires_grad=True)
    assert gradgradcheck(fn, (x, y))
    assert gradgradcheck(lambda x: x ** 0 * x, (x,))
    assert gradgradcheck(lambda x: tg.pow(x, 0.0) + x * x, (x,))
    gx, = tg.grad((x ** y).sum(), x, create_graph=True)
    hy, = tg.grad(gx.sum(), y)
    np.testing.assert_allclose(hy.numpy()[:2], 1 / x.detach().numpy()[:2], rtol=1e-14)
