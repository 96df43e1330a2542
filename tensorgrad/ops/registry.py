"""The op registry: one ``OpInfo`` entry per public op, the index behind the docs and the tests.

Each entry says what the op computes and how it is differentiated, as text a student can read
(``z = x * y``; ``gx = g * y,   gy = g * x``), and everything a generic test needs to check it:
the Function and kernel that implement it, sample inputs (broadcasting, size-0 and size-1
dims, 0-d tensors, transposed, strided and expanded inputs), a numpy reference, and which
derivatives it supports. ``docs/ops.md``, ``tensorgrad ops`` and ``tests/test_registry.py``
are generated from these entries, so an op is documented and tested the moment it is declared.

This module is the table; the sample generators live in ``_samples.py`` (the shape ops' in
``_shape_samples.py``) and the numpy references in ``_references.py``.

One source of truth for the formulas: ``forward`` and ``vjp`` are read from the Function's
docstring, written ``FORWARD;   VJP`` (the first paragraph, split at its first ``;``).
An entry spells its formula out only when no Function docstring states it: compositions of
other ops (``stack``), ops without a Function (``argmax``), or a Function shared by several
ops whose docstring names one of them (``Min`` reuses ``Max``'s).

Notation: g is the upstream gradient (the output's shape), gx the gradient for input x,
[cond] is 1 where cond holds else 0.
"""
import inspect

import numpy as np

from tensorgrad import ops as _ops
from tensorgrad._tensor import from_numpy
from tensorgrad.ops import (
    activation,
    cast,
    conv,
    distance,
    elementwise,
    index,
    linear,
    loss,
    matmul,
    norm,
    reduce,
    select,
    shape,
)
from tensorgrad.ops._conv_references import (
    ref_avg_pool2d,
    ref_conv2d,
    ref_conv_transpose2d,
    ref_max_pool2d,
)
from tensorgrad.ops._conv_samples import (
    conv2d_errors,
    conv2d_samples,
    conv_transpose2d_errors,
    conv_transpose2d_samples,
    pool_errors,
    pool_samples,
)
from tensorgrad.ops._norm_samples import batch_norm_samples, dropout_samples, layer_norm_samples
from tensorgrad.ops._opinfo import OpInfo, _formulas
from tensorgrad.ops._references import (
    ref_arg,
    ref_batch_norm,
    ref_cdist,
    ref_chunk,
    ref_clamp,
    ref_cross_entropy,
    ref_dropout,
    ref_expand,
    ref_flatten,
    ref_gather,
    ref_hinge,
    ref_index,
    ref_layer_norm,
    ref_linear,
    ref_log_softmax,
    ref_logsumexp,
    ref_masked_fill,
    ref_maxmin,
    ref_mse,
    ref_narrow,
    ref_nll,
    ref_softmax,
    ref_split,
    ref_squeeze,
    ref_transpose,
    shape_arg,
)
from tensorgrad.ops._samples import (
    BadCall,
    Sample,
    alpha_samples,
    arg_samples,
    bad_calls,
    binary_samples,
    bmm_samples,
    cast_samples,
    cdist_samples,
    clamp_samples,
    classification_samples,
    dim_samples,
    dot_samples,
    hinge_samples,
    linear_samples,
    logsumexp_samples,
    mask_samples,
    masked_fill_samples,
    matmul_samples,
    maxmin_samples,
    mean_samples,
    mm_samples,
    mse_samples,
    nll_samples,
    positive_binary_samples,
    positive_samples,
    pow_samples,
    reduce_samples,
    unary_samples,
    where_samples,
)
from tensorgrad.ops._shape_samples import (
    cat_samples,
    chunk_samples,
    contiguous_samples,
    expand_as_samples,
    expand_samples,
    flatten_samples,
    gather_samples,
    index_samples,
    index_select_samples,
    like_samples,
    movedim_samples,
    narrow_samples,
    permute_samples,
    reshape_samples,
    split_samples,
    squeeze_samples,
    stack_samples,
    t_samples,
    transpose_samples,
    unsqueeze_samples,
    view_samples,
)

__all__ = ["FAMILIES", "BadCall", "OpInfo", "Sample", "markdown", "table"]

FAMILIES = ("elementwise", "activation", "reduce", "shape", "matmul", "distance", "loss",
            "norm", "conv")
def _entry(name, family, function, kernel, samples, ref, *, formula=None, op=None, **extra):
    """An OpInfo whose formulas come from ``function``'s docstring, unless ``formula`` (for
    ops whose Function docstring does not state them) is given."""
    text = formula if formula is not None else inspect.getdoc(function)
    forward, vjp = _formulas(name, text)
    if op is None:
        op = getattr(_ops, name)
    return OpInfo(name=name, family=family, forward=forward, vjp=vjp, function=function,
                  kernel=kernel, op=op, sample_inputs=samples, ref=ref, **extra)




# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------
BLAS_ULPS = 64      # BLAS (OpenBLAS) may split a dot product differently with more threads
NO_THREADS = {"thread_ulps": None}      # numpy views/copies: no threaded code to compare


def _elementwise_entries():
    E, K = elementwise, "elementwise"

    def binary(name, cls, samples=binary_samples, ref=None, error_inputs=None):
        return _entry(name, K, cls, f"elementwise.binary({cls.__name__.upper()})", samples, ref,
                      error_inputs=error_inputs)

    def unary(name, cls, samples=unary_samples, ref=None):
        return _entry(name, K, cls, f"elementwise.unary({cls.__name__.upper()})", samples, ref)

    def compare(name, symbol, np_fn):
        return _entry(name, K, select.Compare, f"numpy.{np_fn.__name__}", binary_samples, np_fn,
                      formula=f"mask = x {symbol} y;   none (a mask: not differentiable)",
                      supports_grad=False, supports_gradgrad=False, **NO_THREADS)

    return [
        binary("add", E.Add, alpha_samples, lambda x, y, alpha=1: x + alpha * y,
               bad_calls(("not-broadcastable", lambda t: (t(3, 4), t(3)), ValueError))),
        binary("sub", E.Sub, alpha_samples, lambda x, y, alpha=1: x - alpha * y),
        binary("mul", E.Mul, ref=np.multiply),
        binary("div", E.Div, positive_binary_samples, np.true_divide),
        binary("pow", E.Pow, pow_samples, np.power),
        binary("maximum", E.Maximum, ref=np.maximum),
        _entry("minimum", K, E.Minimum, "elementwise.binary(MINIMUM)", binary_samples,
               np.minimum, formula="z = min(x, y);   gx = g * [x wins],   gy = g * [y wins] "
                                   "(a tie splits g evenly)"),
        unary("neg", E.Neg, ref=np.negative),
        unary("exp", E.Exp, ref=np.exp),
        unary("log", E.Log, positive_samples, np.log),
        unary("sqrt", E.Sqrt, positive_samples, np.sqrt),
        unary("square", E.Square, ref=np.square),
        unary("reciprocal", E.Reciprocal, positive_samples, np.reciprocal),
        unary("abs", E.Abs, ref=np.abs),
        _entry("sign", K, None, "numpy.sign", unary_samples, np.sign,
               formula="z = sign(x) ∈ {-1, 0, 1};   none (piecewise constant)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
        _entry("clamp", K, select.Clamp, "elementwise.clamp", clamp_samples, ref_clamp,
               error_inputs=bad_calls(("no-bounds", lambda t: (t(3),), ValueError)),
               note="Tensor bounds: ClampTensor, elementwise.binary MAXIMUM then MINIMUM"),
        _entry("clip", K, select.Clamp, "elementwise.clamp", clamp_samples, ref_clamp),
        _entry("masked_fill", K, select.Where, "elementwise.where", masked_fill_samples,
               ref_masked_fill,
               formula="z = where(mask, value, x);   gx = g where mask is false else 0,   "
                       "g_value = Σ g over the filled entries"),
        _entry("where", K, select.Where, "elementwise.where", where_samples,
               lambda c, x, y: np.where(c, x, y), error_inputs=bad_calls(
                   ("not-broadcastable",
                    lambda t: (from_numpy(np.zeros(2, bool)), t(3, 4), t(3, 4)), ValueError))),
        _entry("cast", K, cast.Cast, "numpy (astype)", cast_samples,
               lambda x, dtype: x.astype(dtype), **NO_THREADS),
        compare("eq", "==", np.equal),
        compare("ne", "!=", np.not_equal),
        compare("lt", "<", np.less),
        compare("le", "<=", np.less_equal),
        compare("gt", ">", np.greater),
        compare("ge", ">=", np.greater_equal),
        _entry("logical_not", K, select.LogicalNot, "numpy.logical_not", mask_samples,
               np.logical_not, formula="z = ~mask;   none (a mask: not differentiable)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
    ]


def _activation_entries():
    A = activation
    return [
        _entry("relu", "activation", A.ReLU, "activation.relu_forward", unary_samples,
               lambda x: np.maximum(x, 0.0)),
        _entry("sigmoid", "activation", A.Sigmoid, "activation.sigmoid_forward", unary_samples,
               lambda x: 1.0 / (1.0 + np.exp(-x))),
        _entry("tanh", "activation", A.Tanh, "activation.tanh_forward", unary_samples, np.tanh),
        _entry("softmax", "activation", A.Softmax, "reduce.softmax_mid", dim_samples,
               ref_softmax,
               error_inputs=bad_calls(("dim-out-of-range", lambda t: (t(3, 4), 2), IndexError))),
        _entry("log_softmax", "activation", A.LogSoftmax, "reduce.log_softmax_mid", dim_samples,
               ref_log_softmax),
    ]


def _reduce_entries():
    R = reduce
    return [
        _entry("sum", "reduce", R.Sum, "reduce.sum_all / reduce.sum_mid", reduce_samples,
               lambda x, dim=None, keepdim=False: np.sum(x, axis=dim, keepdims=keepdim)),
        _entry("mean", "reduce", R.Sum, "reduce.sum_all / reduce.sum_mid (scale 1/n)",
               mean_samples,
               lambda x, dim=None, keepdim=False: np.mean(x, axis=dim, keepdims=keepdim),
               error_inputs=bad_calls(("zero-elements", lambda t: (t(0, 3), 0), ValueError)),
               formula="z = sum(x, dims) / n;   gx = broadcast(g) / n"),
        _entry("max", "reduce", R.Max, "reduce.max_mid", maxmin_samples,
               ref_maxmin(np.max, np.argmax),
               error_inputs=bad_calls(("empty-dim", lambda t: (t(3, 0), 1), ValueError))),
        _entry("min", "reduce", R.Min, "reduce.min_mid", maxmin_samples,
               ref_maxmin(np.min, np.argmin),
               formula="z = min(x, dim);   gx = g routed to the arg-min position (first on "
                       "ties)."),
        _entry("logsumexp", "reduce", R.LogSumExp, "reduce.logsumexp_mid", logsumexp_samples,
               ref_logsumexp),
        _entry("amax", "reduce", R.AMax, "numpy.max", mean_samples,
               lambda x, dim=None, keepdim=False: np.max(x, axis=dim, keepdims=keepdim),
               **NO_THREADS),
        _entry("amin", "reduce", R.AMin, "numpy.min", mean_samples,
               lambda x, dim=None, keepdim=False: np.min(x, axis=dim, keepdims=keepdim),
               formula="z = min(x, dims);   gx = g * [x == z] / count(x == z)   (ties share g)",
               **NO_THREADS),
        _entry("argmax", "reduce", None, "numpy.argmax", arg_samples, ref_arg(np.argmax),
               formula="i = the index of the largest x (the first on ties);   none (an index)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
        _entry("argmin", "reduce", None, "numpy.argmin", arg_samples, ref_arg(np.argmin),
               formula="i = the index of the smallest x (the first on ties);   none (an index)",
               supports_grad=False, supports_gradgrad=False, **NO_THREADS),
    ]


def _shape_entries():
    S = shape

    def view_op(name, cls, kernel, samples, ref, **kw):
        return _entry(name, "shape", cls, kernel, samples, ref, **kw, **NO_THREADS)

    return [
        view_op("view", S.View, "numpy view", view_samples,
                lambda x, *s: x.reshape(shape_arg(s)), error_inputs=bad_calls(
                    ("needs-a-copy", lambda t: (t(3, 4).T, 12), RuntimeError),
                    ("wrong-size", lambda t: (t(3, 4), 5), ValueError))),
        view_op("reshape", S.Reshape, "numpy view (a copy when the strides need one)",
                reshape_samples, lambda x, *s: x.reshape(shape_arg(s))),
        view_op("view_as", S.View, "numpy view", like_samples,
                lambda x, other: x.reshape(other.shape),
                formula="z = x viewed with other's shape (no copy);   gx = g reshaped back"),
        view_op("reshape_as", S.Reshape, "numpy view (a copy when the strides need one)",
                like_samples, lambda x, other: x.reshape(other.shape),
                formula="z = x reshaped to other's shape;   gx = g reshaped back"),
        view_op("flatten", S.Reshape, "numpy view (a copy when the strides need one)",
                flatten_samples, ref_flatten, error_inputs=bad_calls(
                    ("start>end", lambda t: (t(2, 3, 4), 2, 1), ValueError)),
                formula="z = x with dims start_dim..end_dim merged;   gx = g reshaped back"),
        view_op("transpose", S.Permute, "numpy view", transpose_samples, ref_transpose,
                formula="z = x with dims dim0 and dim1 swapped (a view);   gx = g swapped back"),
        view_op("t", S.Permute, "numpy view", t_samples, ref_transpose,
                formula="z = xᵀ for x of at most 2 dims (a view);   gx = gᵀ"),
        view_op("permute", S.Permute, "numpy view", permute_samples,
                lambda x, *d: np.transpose(x, shape_arg(d))),
        view_op("movedim", S.Permute, "numpy view", movedim_samples, np.moveaxis,
                formula="z = x with dim source moved to destination (a view);   "
                        "gx = g with the dim moved back"),
        view_op("squeeze", S.View, "numpy view", squeeze_samples, ref_squeeze,
                formula="z = x without its size-1 dims (all, or the given ones);   "
                        "gx = g reshaped back"),
        view_op("unsqueeze", S.View, "numpy view", unsqueeze_samples, np.expand_dims,
                formula="z = x with a size-1 dim inserted at dim;   gx = g reshaped back"),
        view_op("expand", S.Expand, "numpy view (zero strides)", expand_samples, ref_expand,
                error_inputs=bad_calls(("not-size1", lambda t: (t(3, 4), 2, 4), ValueError))),
        view_op("expand_as", S.Expand, "numpy view (zero strides)", expand_as_samples,
                lambda x, other: np.broadcast_to(x, other.shape),
                formula="z = x broadcast to other's shape (a view);   gx = sum of g over the "
                        "broadcast dims"),
        view_op("contiguous", S.Contiguous, "numpy.copyto", contiguous_samples,
                np.copy,
                formula="z = x, or a C-contiguous copy when x is not;   gx = g"),
        view_op("clone", S.Contiguous, "numpy.copyto", contiguous_samples, np.array),
        view_op("split", S.Split, "numpy views", split_samples, ref_split),
        view_op("chunk", S.Split, "numpy views", chunk_samples, ref_chunk,
                formula="z_k = the k-th piece of ceil(n / chunks) along dim (views);   "
                        "gx = cat(g_k, dim)"),
        view_op("cat", S.Cat, "numpy.concatenate", cat_samples,
                lambda xs, dim=0: np.concatenate(xs, axis=dim), error_inputs=bad_calls(
                    ("mismatched", lambda t: ([t(3, 4), t(2, 3)], 0), ValueError))),
        view_op("stack", S.Cat, "numpy.concatenate", stack_samples,
                lambda xs, dim=0: np.stack(xs, axis=dim),
                formula="z = cat of the inputs, each unsqueezed at dim;   "
                        "g_i = the slice of g belonging to input i"),
        view_op("index", index.Index, "numpy indexing (basic: a view)", index_samples, ref_index),
        view_op("narrow", index.Index, "numpy view", narrow_samples, ref_narrow,
                error_inputs=bad_calls(("past-the-end", lambda t: (t(2, 3), 0, 2, 1), IndexError),
                                       ("before-the-start", lambda t: (t(2, 3), 0, -3, 1),
                                        IndexError)),
                formula="z = x[start:start+length] along dim (a view);   "
                        "gx = zeros with g placed at the slice"),
        view_op("index_select", index.Index, "numpy indexing", index_select_samples,
                lambda x, dim, index: x if x.ndim == 0 else np.take(x, index, axis=dim),
                formula="z = x[..., index, ...] along dim;   gx = zeros with g added at index "
                        "(repeats accumulate)"),
        view_op("gather", index.Gather, "numpy.take_along_axis", gather_samples, ref_gather),
    ]


def _matmul_entries():
    B = matmul
    gemm_threads = {"thread_ulps": BLAS_ULPS,
                    "note": "BLAS-backed: results may differ in the last bits with the "
                            "thread count"}
    return [
        _entry("matmul", "matmul", B.MatMul, "blas.gemm / blas.matmul_batched", matmul_samples,
               np.matmul, error_inputs=bad_calls(
                   ("not-aligned", lambda t: (t(3, 4), t(5, 2)), ValueError),
                   ("0-d", lambda t: (t(), t(3)), ValueError)), **gemm_threads),
        _entry("mm", "matmul", B.MatMul, "blas.gemm", mm_samples, np.matmul, **gemm_threads),
        _entry("bmm", "matmul", B.MatMul, "blas.matmul_batched", bmm_samples, np.matmul,
               **gemm_threads),
        _entry("dot", "matmul", B.Dot, "blas.gemm", dot_samples, np.dot, **gemm_threads),
    ]


def _linear_entries():
    gemm_threads = {"thread_ulps": BLAS_ULPS,
                    "note": "also F.linear / F.linear_relu; BLAS-backed: results may differ "
                            "in the last bits with the thread count"}
    return [
        _entry("linear", "matmul", linear.Linear, "blas.gemm + activation.bias_add",
               linear_samples, ref_linear, **gemm_threads),
        _entry("linear_relu", "matmul", linear.LinearReLU, "blas.gemm + activation.bias_relu",
               linear_samples, lambda *a: np.maximum(ref_linear(*a), 0.0), **gemm_threads),
    ]


# cdist's Function docstring states the Euclidean formulas; the other metrics are other
# Functions (Manhattan) or compositions (cosine, inner product), so the entry spells all out.
CDIST_FORMULA = (
    "D = ||x1_i - x2_j||² (sqeuclidean), d = sqrt(D) (euclidean), 1 - u1_i·u2_j with "
    "u = x/||x|| (cosine), x1_i·x2_j (inner_product), Σ_t |x1_it - x2_jt| (manhattan);   "
    "gx1 = 2 (rowsum(G) x1 - G x2), gx2 = 2 (colsum(G) x2 - Gᵀ x1) with G = g or g / (2 d); "
    "cosine and inner_product through matmul's VJP; manhattan gx1_i = Σ_j g_ij "
    "sign(x1_i - x2_j), gx2_j = Σ_i g_ij sign(x2_j - x1_i)")


def _distance_entries():
    return [
        _entry("cdist", "distance", distance.Cdist,
               "distance.cdist; distance.cdist_manhattan, sign_contract, sign_dot; blas.gemm",
               cdist_samples, ref_cdist, op=distance.cdist, thread_ulps=BLAS_ULPS,
               formula=CDIST_FORMULA, error_inputs=bad_calls(
                   ("3-d", lambda t: (t(2, 3, 4), t(2, 4)), ValueError),
                   ("columns-differ", lambda t: (t(2, 3), t(2, 4)), ValueError),
                   ("bad-metric", lambda t: (t(2, 3), t(2, 3), False, "chebyshev"), ValueError),
                   ("squared-cosine", lambda t: (t(2, 3), t(2, 3), True, "cosine"),
                    ValueError)),
               note="metric= euclidean, sqeuclidean (tiled GEMM kernel), cosine (unit rows "
                    "and one matmul, clipped to [0, 2]), inner_product (x1 @ x2ᵀ), manhattan "
                    "(tiled kernel, no GEMM); forward bitwise equal under any thread count "
                    "for the own kernels; the GEMMs go through BLAS"),
    ]


def _loss_entries():
    L = loss
    return [
        _entry("cross_entropy", "loss", L.CrossEntropy, "loss.xent_forward",
               classification_samples, ref_cross_entropy, op=L.cross_entropy,
               error_inputs=bad_calls(
                   ("label-out-of-range", lambda t: (t(3, 4), np.array([0, 4, 1])), ValueError))),
        _entry("multiclass_hinge_loss", "loss", L.MulticlassHinge, "loss.hinge_forward",
               hinge_samples, ref_hinge, op=L.multiclass_hinge_loss),
        _entry("nll_loss", "loss", None, "shape.gather + elementwise.binary(MUL) + reduce",
               nll_samples, ref_nll, op=L.nll_loss,
               formula="L_i = −w_{y_i}·logp_{i,y_i} (0 where y_i == ignore_index);   "
                       "g_{i,y_i} = −w_{y_i}·g_i ('mean': g / Σ w_{y_i}), 0 elsewhere"),
        _entry("mse_loss", "loss", L.MSE, "loss.mse_forward", mse_samples, ref_mse,
               op=L.mse_loss,
               error_inputs=bad_calls(("shapes-differ", lambda t: (t(3, 4), t(4)), ValueError))),
    ]


def _norm_entries():
    N = norm
    return [
        _entry("batch_norm", "norm", N.BatchNorm,
               "norm.bn_train_forward; backward norm.bn_train_backward",
               batch_norm_samples, ref_batch_norm, op=N.batch_norm,
               error_inputs=bad_calls(
                   ("channel-mismatch", lambda t: (t(4, 3), t(2), t(2)), ValueError),
                   ("1-d", lambda t: (t(3), None, None), ValueError),
                   ("one-value-per-channel", lambda t: (t(1, 3), None, None, None, None, True),
                    ValueError),
                   ("eval-without-running-stats", lambda t: (t(4, 3), None, None), ValueError)),
               note="training=False: BatchNormEval (norm.bn_apply), y = (x − running_mean)·"
                    "w·r + b, with gradients for the running statistics too; a recorded "
                    "backward (create_graph) is built from ops"),
        _entry("layer_norm", "norm", N.LayerNorm,
               "norm.ln_forward; backward norm.ln_backward", layer_norm_samples,
               ref_layer_norm, op=N.layer_norm, error_inputs=bad_calls(
                   ("shape-mismatch", lambda t: (t(2, 3), (4,)), ValueError),
                   ("weight-shape", lambda t: (t(2, 3), (3,), t(4)), ValueError)),
               note="a recorded backward (create_graph) is built from ops"),
        _entry("dropout", "norm", N.Dropout, "norm.dropout_forward; backward "
               "norm.dropout_apply", dropout_samples, ref_dropout, op=N.dropout, seed=1234,
               error_inputs=bad_calls(("p>1", lambda t: (t(3), 1.5), ValueError),
                                      ("p<0", lambda t: (t(3), -0.1), ValueError)),
               note="mask: SplitMix64 of (key, element index), the key drawn from the "
                    "generator tg.manual_seed seeds"),
    ]


def _conv_entries():
    C = conv
    blas_threads = {"thread_ulps": BLAS_ULPS,
                    "note": "also F.conv2d etc.; im2col/col2im bitwise equal under any thread "
                            "count, the GEMMs go through BLAS"}
    return [
        _entry("conv2d", "conv", C.Conv2d, "conv.conv_forward (im2col + blas gemm, bias in "
               "the epilogue)", conv2d_samples, ref_conv2d, op=C.conv2d,
               error_inputs=conv2d_errors, **blas_threads),
        _entry("conv_transpose2d", "conv", C.ConvTranspose2d, "conv.conv_input (blas gemm + "
               "col2im, bias as col2im's initial value)", conv_transpose2d_samples,
               ref_conv_transpose2d, op=C.conv_transpose2d,
               error_inputs=conv_transpose2d_errors, **blas_threads),
        _entry("max_pool2d", "conv", C.MaxPool2d, "conv.max_pool_forward (backward: "
               "conv.max_pool_scatter, its VJP conv.max_pool_gather)", pool_samples,
               ref_max_pool2d, op=C.max_pool2d, error_inputs=pool_errors),
        _entry("avg_pool2d", "conv", C.AvgPool2d, "conv.avg_pool_forward (backward: "
               "conv.avg_pool_adjoint)", pool_samples, ref_avg_pool2d, op=C.avg_pool2d,
               error_inputs=pool_errors),
    ]


_TABLE = []


def table():
    """The registry: one ``OpInfo`` per public op, grouped by family (in ``FAMILIES`` order).

    Each record has ``name``, ``family``, ``forward`` and ``vjp`` (formula text), ``kernel``
    and the rest of the ``OpInfo`` fields. Built at the first call and cached.
    """
    if not _TABLE:
        _TABLE.extend(_elementwise_entries() + _activation_entries() + _reduce_entries()
                      + _shape_entries() + _matmul_entries() + _linear_entries()
                      + _distance_entries() + _loss_entries() + _norm_entries()
                      + _conv_entries())
    return list(_TABLE)


def markdown(only=None):
    """``docs/ops.md``: the registry as one Markdown table per family (or only family
    ``only``); an entry's note follows its kernel."""
    lines = ["# Ops", "",
             ("Generated from `tensorgrad/ops/registry.py` by `tensorgrad ops --markdown`; "
              "do not edit."), "",
             ("g is the upstream gradient, gx the gradient for input x, [cond] is 1 where cond "
              "holds else 0."), ""]
    for family in FAMILIES if only is None else (only,):
        lines += [f"## {family}", "", "| op | forward | vjp | kernel |", "|---|---|---|---|"]
        for e in table():
            if e.family == family:
                kernel = f"`{e.kernel}`" + (f" ({e.note})" if e.note else "")
                cells = [f"`{e.name}`", e.forward, e.vjp, kernel]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)

