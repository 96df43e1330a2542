"""Losses: softmax cross-entropy, multiclass hinge (SVM) and mean squared error.

Scores are [N, C] (one row per sample), labels int [N] in [0, C). With w the weight of a row
(1/N for reduction='mean', 1 for 'sum', the upstream g_i for 'none'):

  cross_entropy          L_i = log Σ_j exp(s_ij) − s_{i,y_i}
                         dL/ds_i = w_i·(softmax(s_i) − onehot(y_i))
  multiclass_hinge_loss  L_i = Σ_{j≠y_i} max(0, s_ij − s_{i,y_i} + margin)
                         dL/ds_ij = w_i·[margin_ij > 0] (j ≠ y_i),  dL/ds_{i,y_i} = −w_i·count_i
  mse_loss               L = (x − t)²  (elementwise, then reduced);  dL/dx = 2w(x − t) = −dL/dt

The forward kernels (``_kernels/loss.pyx``) accumulate in double. When the scores need a
gradient, the cross-entropy and hinge forwards also write w·(dL/ds) in the same pass over the
row (it is still in cache) and backward hands that buffer over, scaled by g when g ≠ 1 — so
a training step reads the scores once. A second backward (retain_graph) recomputes from the
saved scores. With create_graph=True backward is written with differentiable ops instead
(softmax, mul, sum), so double backward works through every loss.
"""
import numpy as np

from tensorgrad import function as _fn
from tensorgrad._kernels import loss as LK
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function, is_grad_enabled
from tensorgrad.ops._util import FLOATS, as_tensor, result_float, shape_str
from tensorgrad.ops.activation import log_softmax, softmax
from tensorgrad.ops.cast import cast
from tensorgrad.ops.index import gather
from tensorgrad.ops.shape import reshape

__all__ = ["cross_entropy", "mse_loss", "multiclass_hinge_loss", "nll_loss"]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------------- checks
def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_scores(scores, op):
    scores = as_tensor(scores, op=op)
    if scores._data.dtype not in FLOATS:
        raise TypeError(f"{op}: scores must be float32 or float64, got dtype "
                        f"{scores._data.dtype}")
    if scores.ndim != 2:
        raise ValueError(f"{op}: scores must be 2-D [batch, classes], got shape "
                         f"{tuple(scores.shape)}")
    if scores.shape[1] == 0:
        raise ValueError(f"{op}: scores of shape {tuple(scores.shape)} have no classes")
    return scores


def _check_labels(labels, scores, op, ignore_index=None):
    """(labels as a C-contiguous int64 ndarray, whether any equals ``ignore_index``), after
    checking dtype, shape and range (a label equal to ``ignore_index`` is allowed anywhere)."""
    arr = labels._data if isinstance(labels, Tensor) else np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be an integer array (class indices), got dtype "
                        f"{arr.dtype}")
    n, c = scores.shape
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{op}: labels must have shape ({n},) to match scores of shape "
                         f"{tuple(scores.shape)}, got shape {tuple(arr.shape)}")
    ignored = False
    if n:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= c:
            out = (arr < 0) | (arr >= c)
            if ignore_index is not None:
                out &= arr != ignore_index
            if out.any():
                bad = int(np.flatnonzero(out)[0])
                raise ValueError(f"{op}: label {int(arr[bad])} at index {bad} is out of range "
                                 f"[0, {c}) for scores of shape {tuple(scores.shape)}")
            ignored = True          # every label outside [0, c) is ignore_index
        elif ignore_index is not None and lo <= ignore_index <= hi:
            ignored = bool((arr == ignore_index).any())
    if arr.dtype != np.int64 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.int64)
    return arr, ignored


def _label_tensor(labels, y):
    """The labels as the fused losses take them: the caller's Tensor itself (a Graph then
    reads the labels written into it at every replay), else ``y`` (checked) wrapped."""
    return labels if isinstance(labels, Tensor) else _wrap(y)


def _int64(labels):
    """The labels' memory as C-contiguous int64 (a copy only for other integer types: a
    planned Graph then redoes this op from Python, so the copy stays current)."""
    y = labels._data
    if y.dtype != np.int64 or not y.flags.c_contiguous:
        y = np.ascontiguousarray(y, dtype=np.int64)
    return y


def _c(arr):
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _scratch(ctx):
    """The node's scratch buffers by name, kept in ``ctx.scratch`` so that a Graph.forward()
    replay reuses them."""
    bufs = getattr(ctx, "scratch", None)
    if bufs is None:
        bufs = ctx.scratch = {}
    return bufs


def _aux(ctx, name, shape, dtype):
    """The scratch buffer ``name`` of this shape and dtype (reused when the node replays)."""
    bufs = _scratch(ctx)
    buf = bufs.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = bufs[name] = np.empty(shape, dtype)
    return buf


def _row_weight(reduction, n):
    """w0: the weight of every row in the 'mean'/'sum' gradient (1 for 'none')."""
    return 1.0 / n if (reduction == "mean" and n) else 1.0


_MODE = {"none": 0, "sum": 1, "mean": 2}      # how the kernels reduce the row losses


def _loss_out(ctx, n, reduction, dtype):
    """(row-loss buffer, output): the forward's output is the row losses themselves
    ('none') or a 0-d array the kernel writes their sum or mean into."""
    if reduction == "none":
        rows = ctx.empty((n,), dtype)
        return rows, rows
    return _aux(ctx, "rows", (n,), dtype), ctx.empty((), dtype)


def _stash_buffer(ctx, s):
    """Where the forward writes w0·dL/ds when the scores need a gradient (else a 0-row
    array, which tells the kernel to skip it)."""
    if not ctx.needs_input_grad[0]:
        return np.empty((0, s.shape[1]), s.dtype)
    return _aux(ctx, "stash", s.shape, s.dtype)


def _take_stash(ctx, g, reduction):
    """The gradient the forward computed (as w0·dL/ds), scaled by g; None if already used.

    Eagerly the buffer is handed over (the node forgets it), so it can become someone's
    .grad without a copy. While a Graph tapes its backward, the scaling is a (taped) op
    instead, reading the buffer the taped forward rewrites at every replay: the same values,
    as multiplying by 1 is exact.
    """
    if _fn._capture is not None:
        stash = _scratch(ctx).get("stash")
        if stash is None:
            _fn._capture.fail("a fused loss's backward ran without its forward's gradient")
            return None
        return _wrap(stash) * (g.reshape(-1, 1) if reduction == "none" else g)
    stash = _scratch(ctx).pop("stash", None)
    if stash is None:
        return None
    gd = g._data
    if reduction == "none":
        np.multiply(stash, gd.reshape(-1, 1), out=stash)
    elif gd != 1:
        np.multiply(stash, gd, out=stash)
    return _wrap(stash)


def _weights(g, reduction, n, dtype):
    """The per-row backward weights as the kernels take them (length n, or 1)."""
    gd = g._data
    if reduction == "none":
        return _c(gd.astype(dtype, copy=False))
    scale = float(gd) / n if (reduction == "mean" and n) else float(gd)
    return np.full(1, scale, dtype)


def _graph_weight(g, reduction, n):
    """w as a differentiable Tensor broadcastable against [N, C] (create_graph path)."""
    if reduction == "none":
        return g.reshape(-1, 1)
    return g / n if (reduction == "mean" and n) else g


# --------------------------------------------------------------------------- cross-entropy
class CrossEntropy(Function):
    """L_i = lse(s_i) − s_{i,y_i};   gs = w·(softmax(s) − onehot(y))"""
    tape_forward = tape_backward = True     # the fused kernel tapes; see _take_stash

    @staticmethod
    def forward(ctx, scores, labels, reduction):
        s = _c(scores._data)
        n = s.shape[0]
        stats = _aux(ctx, "stats", (n, 2), np.float64)
        rows, out = _loss_out(ctx, n, reduction, s.dtype)
        grad = _stash_buffer(ctx, s)
        y = _int64(labels)
        LK.xent_forward(s, y, stats, rows, _row_weight(reduction, n), grad,
                        out.reshape(-1), _MODE[reduction])
        ctx.save_for_backward(scores)
        ctx.meta = (y, reduction)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        (scores,) = ctx.saved_tensors
        labels, reduction = ctx.meta
        n, c = scores.shape
        if is_grad_enabled():       # create_graph=True: differentiable ops
            onehot = np.zeros((n, c), scores._data.dtype)
            onehot[np.arange(n), labels] = 1
            gs = _graph_weight(g, reduction, n) * (softmax(scores, 1) - _wrap(onehot))
            return gs, None, None
        gs = _take_stash(ctx, g, reduction)
        if gs is None:
            out = np.empty((n, c), scores._data.dtype)
            w = _weights(g, reduction, n, out.dtype)
            LK.xent_backward(_c(scores._data), labels, ctx.scratch["stats"], w, out)
            gs = _wrap(out)
        return gs, None, None


def cross_entropy(scores, labels, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy (the softmax loss) of scores [N, C] against int labels [N]:
    L_i = −log(exp(s_{i,y_i}) / Σ_j exp(s_ij)), computed with a stable log-sum-exp; the
    result is averaged over the batch ('mean'), summed ('sum') or returned per row ('none').

    PyTorch's options, with p = log_softmax(s), ε = label_smoothing and w the class weights
    (all 1 by default): L_i = (1 − ε)·(−w_{y_i} p_{i,y_i}) + (ε/C)·(−Σ_c w_c p_ic), 0 for
    rows whose label is ``ignore_index``; 'mean' divides by Σ w_{y_i} over the rows kept.
    The VJP: gs_i = (the row's weight)·(softmax(s_i)·Σ_c q_ic − q_i) with
    q_i = (1 − ε)·w_{y_i}·onehot(y_i) + (ε/C)·w (by differentiable ops; the default
    arguments use the fused kernel).
    """
    op = "cross_entropy"
    _check_reduction(reduction, op)
    scores = _check_scores(scores, op)
    y, ignored = _check_labels(labels, scores, op, ignore_index)
    if weight is None and not label_smoothing and not ignored:
        # the fused kernel: nothing ignored
        return CrossEntropy.apply(scores, _label_tensor(labels, y), reduction)
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    logp = log_softmax(scores, 1)
    w = _check_class_weight(weight, scores, op)
    loss = _nll(logp, y, w, ignore_index, reduction)
    if not eps:
        return loss
    smooth = -(logp * _wrap(w) if w is not None else logp).sum(1)
    keep = y != ignore_index
    smooth = smooth * _wrap(keep.astype(scores._data.dtype))
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        smooth = smooth.sum() / _kept_weight(y, w, keep)
    return loss * (1.0 - eps) + smooth * (eps / scores.shape[1])


def _check_class_weight(weight, scores, op):
    """The class weights as a [C] ndarray of the scores' dtype (constants: no gradient)."""
    if weight is None:
        return None
    arr = weight._data if isinstance(weight, Tensor) else np.asarray(weight)
    c = scores.shape[1]
    if arr.shape != (c,) or arr.dtype.kind not in "fiu":
        raise ValueError(f"{op}: weight must be a 1-D tensor of {c} numbers (one per class), "
                         f"got shape {tuple(arr.shape)} and dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=scores._data.dtype)


def _kept_weight(y, w, keep):
    """Σ w_{y_i} over the rows kept (their count without weights): 'mean''s divisor."""
    yk = y[keep]
    return float(w[yk].sum()) if w is not None else float(yk.size)


def _nll(logp, y, w, ignore_index, reduction):
    """L_i = −w_{y_i}·logp_{i,y_i} (0 where y_i == ignore_index), reduced as PyTorch does."""
    keep = y != ignore_index
    ys = np.where(keep, y, 0)
    rw = (w[ys] if w is not None else np.ones(y.shape, logp._data.dtype)) * keep
    picked = reshape(gather(logp, 1, ys.reshape(-1, 1)), (-1,))
    rows = picked * _wrap(np.asarray(-rw, logp._data.dtype))
    if reduction == "none":
        return rows
    total = rows.sum()
    return total if reduction == "sum" else total / _kept_weight(y, w, keep)


def nll_loss(log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities [N, C] (e.g. log_softmax's output) against
    int targets [N], as PyTorch's: L_i = −w_{y_i}·log_probs_{i,y_i} (w: optional class weights
    [C], 1 by default), 0 where y_i == ignore_index; 'mean' divides Σ L_i by Σ w_{y_i} over
    the rows kept, 'sum' sums, 'none' returns L.  VJP: g_{i,y_i} = −w_{y_i}·(g_i, or g / Σ w
    for 'mean'), 0 elsewhere."""
    op = "nll_loss"
    _check_reduction(reduction, op)
    log_probs = _check_scores(log_probs, op)
    y, _ = _check_labels(target, log_probs, op, ignore_index)
    return _nll(log_probs, y, _check_class_weight(weight, log_probs, op), ignore_index,
                reduction)


# ------------------------------------------------------------------------------ hinge (SVM)
class MulticlassHinge(Function):
    """L_i = Σ_{j≠y_i} max(0, s_ij − s_{i,y_i} + margin);
    gs_ij = w_i·[margin_ij > 0] (j ≠ y_i), gs_{i,y_i} = −w_i·count_i"""

    tape_forward = tape_backward = True     # as CrossEntropy

    @staticmethod
    def forward(ctx, scores, labels, margin, reduction):
        s = _c(scores._data)
        n = s.shape[0]
        rows, out = _loss_out(ctx, n, reduction, s.dtype)
        grad = _stash_buffer(ctx, s)
        y = _int64(labels)
        LK.hinge_forward(s, y, margin, rows, _row_weight(reduction, n), grad,
                         out.reshape(-1), _MODE[reduction])
        ctx.save_for_backward(scores)
        ctx.meta = (y, margin, reduction)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        (scores,) = ctx.saved_tensors
        labels, margin, reduction = ctx.meta
        n, c = scores.shape
        if is_grad_enabled():
            # piecewise linear: the gradient is constant in s (0 second derivative) and
            # linear in g, so only the path through g needs a graph
            mask = np.empty((n, c), scores._data.dtype)
            LK.hinge_backward(_c(scores._data), labels, margin, np.ones(1, mask.dtype), mask)
            return _graph_weight(g, reduction, n) * _wrap(mask), None, None, None
        gs = _take_stash(ctx, g, reduction)
        if gs is None:
            out = np.empty((n, c), scores._data.dtype)
            w = _weights(g, reduction, n, out.dtype)
            LK.hinge_backward(_c(scores._data), labels, margin, w, out)
            gs = _wrap(out)
        return gs, None, None, None


def multiclass_hinge_loss(scores, labels, margin=1.0, reduction="mean"):
    """The multiclass SVM loss L_i = Σ_{j≠y_i} max(0, s_ij − s_{i,y_i} + margin) of scores
    [N, C] against int labels [N]; 'mean' averages over the batch (it does NOT divide by the
    number of classes, unlike torch's multi_margin_loss). A margin of exactly 0 is inactive.
    """
    op = "multiclass_hinge_loss"
    _check_reduction(reduction, op)
    scores = _check_scores(scores, op)
    y, _ = _check_labels(labels, scores, op)
    try:
        margin = float(margin)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: margin must be a number, got {type(margin).__name__}") from None
    return MulticlassHinge.apply(scores, _label_tensor(labels, y), margin, reduction)


# -------------------------------------------------------------------------------------- MSE
class MSE(Function):
    """L = reduce((x − t)²);   gx = 2w(x − t),   gt = −gx"""

    @staticmethod
    def forward(ctx, x, t, reduction):
        xd, td = _c(x._data).reshape(-1), _c(t._data).reshape(-1)
        dt = xd.dtype
        if reduction == "none":
            out = ctx.empty(x.shape, dt)
            LK.mse_forward(xd, td, out.reshape(-1))
            res = _wrap(out)
        else:
            total = LK.mse_forward(xd, td, np.empty(0, dt))
            out = ctx.empty((), dt)
            n = xd.shape[0]
            out[()] = total if reduction == "sum" else (total / n if n else np.nan)
            res = _wrap(out)
        ctx.save_for_backward(x, t)
        ctx.meta = reduction
        return res

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        reduction = ctx.meta
        nx, nt = ctx.needs_input_grad[:2]
        n = x._data.size
        if is_grad_enabled():
            w = g if reduction != "mean" or not n else g / n
            gx = (x - t) * (w * 2)
            return (gx if nx else None), (-gx if nt else None), None
        dt = x._data.dtype
        gd = g._data
        if reduction == "none":
            w = _c(gd.astype(dt, copy=False)).reshape(-1)
        else:
            w = np.full(1, float(gd) / n if (reduction == "mean" and n) else float(gd), dt)
        out = np.empty(x.shape, dt)
        LK.mse_backward(_c(x._data).reshape(-1), _c(t._data).reshape(-1), w, out.reshape(-1))
        gx = _wrap(out)
        if not nt:
            return gx, None, None
        # out= always: a ufunc on a 0-d array without it returns a numpy scalar, not an array
        gt = _wrap(np.negative(out, out=np.empty_like(out) if nx else out))
        return (gx if nx else None), gt, None


def mse_loss(input, target, reduction="mean"):
    """Mean squared error between input and target of the same shape:
    mean((input − target)²) ('mean'), the sum ('sum') or the elementwise squares ('none')."""
    op = "mse_loss"
    _check_reduction(reduction, op)
    x = as_tensor(input, op=op)
    t = as_tensor(target, like=x, op=op)
    if x.shape != t.shape:
        raise ValueError(f"mse_loss: input and target must have the same shape, got "
                         f"{shape_str(x.shape, t.shape)} (broadcasting them is almost always "
                         f"a bug; reshape one explicitly)")
    dx, dtt = x._data.dtype, t._data.dtype
    if dx not in FLOATS or dtt not in FLOATS or dx != dtt:
        dt = result_float(dx if dx in FLOATS else np.dtype(np.float32),
                          dtt if dtt in FLOATS else np.dtype(np.float32))
        x, t = cast(x, dt), cast(t, dt)
    return MSE.apply(x, t, reduction)
