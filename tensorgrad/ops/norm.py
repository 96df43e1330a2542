"""Normalisation and dropout: batch_norm, layer_norm, dropout (PyTorch's signatures).

Batch norm normalises each channel (dim 1 of [N, C, *]) over the batch and spatial dims,
layer norm each trailing ``normalized_shape`` block; both forwards are fused kernels
(``_kernels/norm.pyx``: statistics in one pass in double, then one normalise+affine pass).

Backward, when no graph is recorded (the usual ``loss.backward()``), is one fused kernel per
op: two per-channel sums, then one elementwise pass for gx. When a graph IS recorded
(``create_graph=True``), the same VJP is written with differentiable ops instead, the
statistics recomputed from x by ops, so the second derivative flows through mean and variance
and double backward works. Both paths compute the same formula (tests check they agree).

Dropout draws one 64-bit key from the generator that ``tg.manual_seed`` seeds; the kernel
derives element i's keep/drop from (key, i) alone (SplitMix64), writing the output and a
uint8 mask in one pass. Backward reuses the mask: gx = g·mask/(1−p).
"""
import math
import numbers

import numpy as np

from tensorgrad._kernels import norm as NK
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function, is_grad_enabled
from tensorgrad.ops._util import FLOATS, as_tensor
from tensorgrad.ops.cast import cast
from tensorgrad.ops.elementwise import add, mul, neg, reciprocal, sqrt, sub
from tensorgrad.ops.reduce import mean, sum
from tensorgrad.ops.shape import reshape
from tensorgrad.random import get_generator

__all__ = ["batch_norm", "dropout", "layer_norm"]

_F64 = np.dtype(np.float64)


def _contig(d):
    return d if d.flags.c_contiguous else np.ascontiguousarray(d)


def _channel_view(d):
    """A C-contiguous [N, C, *] array seen as [N, C, S] (S = 1 for [N, C])."""
    return d.reshape(d.shape[0], d.shape[1], math.prod(d.shape[2:]))


def _f64(t, n, fill):
    """A Tensor's values as float64 [n] (``fill`` when t is None)."""
    if t is None:
        return np.full(n, fill, _F64)
    return np.asarray(t._data, dtype=_F64).reshape(n)


# ---------------------------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------------------------
def _to(g, dtype):
    """g cast to ``dtype`` (None passes through). Weights may be float32 for a float64 input
    (or the reverse): gradients built from ops then come out promoted."""
    return None if g is None or dtype is None else cast(g, dtype)


def _like(grads, inputs):
    """Each gradient in its input's dtype."""
    return tuple(_to(g, None if t is None else t._data.dtype) for g, t in zip(grads, inputs))


def _bn_dims(x):
    """(reduced dims, broadcast shape of a per-channel [C] vector, values per channel M)."""
    dims = (0,) + tuple(range(2, x.ndim))
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return dims, bshape, x._data.size // max(x.shape[1], 1)


def _bn_train_vjp_ops(g, x, weight, eps, needs):
    """The training-mode VJP written with differentiable ops (for create_graph=True)."""
    dims, bshape, m = _bn_dims(x)
    mu = mean(x, dims, keepdim=True)
    xc = sub(x, mu)
    r = reciprocal(sqrt(add(mean(mul(xc, xc), dims, keepdim=True), eps)))
    xh = mul(xc, r)
    sg = sum(g, dims, keepdim=True)
    sgx = sum(mul(g, xh), dims, keepdim=True)
    gx = gw = gb = None
    if needs[0]:
        wr = r if weight is None else mul(reshape(weight, bshape), r)
        gx = mul(wr, sub(sub(g, mul(sg, 1.0 / m)), mul(xh, mul(sgx, 1.0 / m))))
    if needs[1]:
        gw = reshape(sgx, (x.shape[1],))
    if needs[2]:
        gb = reshape(sg, (x.shape[1],))
    return gx, gw, gb


def _update_running(t, new):
    """t's values replaced in place by ``new`` (float64), counted as an in-place write."""
    np.copyto(t._data, new.reshape(t._data.shape), casting="unsafe")
    t._version[0] += 1


class BatchNorm(Function):
    """y = (x − μ)·r·w + b per channel, μ and σ² the batch's mean and biased variance over
    all dims but 1, r = 1/√(σ² + eps);   gx = w·r·(g − mean(g) − x̂·mean(g·x̂)),
    gw = Σ g·x̂,   gb = Σ g   (x̂ = (x − μ)·r, means and sums per channel)

    Training mode. The running statistics, when given, are updated in place:
    running = (1 − momentum)·running + momentum·batch, with the UNBIASED variance.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        xd = _contig(x._data)
        x3 = _channel_view(xd)
        c = x3.shape[1]
        mu = np.empty(c, _F64)
        var = np.empty(c, _F64)
        out = ctx.empty(xd.shape, xd.dtype)
        NK.bn_train_forward(x3, None if weight is None else _f64(weight, c, 1.0),
                            None if bias is None else _f64(bias, c, 0.0), eps,
                            _channel_view(out), mu, var)
        m = x3.shape[0] * x3.shape[2]
        if running_mean is not None:
            _update_running(running_mean,
                            (1 - momentum) * _f64(running_mean, c, 0) + momentum * mu)
        if running_var is not None:
            _update_running(running_var, (1 - momentum) * _f64(running_var, c, 0)
                            + momentum * var * (m / (m - 1)))
        ctx.save_for_backward(x, weight)
        ctx.meta = (eps, mu, var, None if bias is None else bias._data.dtype)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        # The output does not depend on the running statistics (only updated in place):
        # their gradient is zero.
        stats = tuple(_wrap(np.zeros(x.shape[1], x._data.dtype if ctx.args[i] is None
                                     else ctx.args[i]._data.dtype))
                      if ctx.needs_input_grad[i] else None for i in (3, 4))
        if is_grad_enabled():           # create_graph: a VJP that is itself differentiable
            gx, gw, gb = _bn_train_vjp_ops(g, x, weight, ctx.meta[0], needs)
            return _like((gx, gw), (x, weight)) + (_to(gb, ctx.meta[3]),) + stats + (
                None, None)
        eps, mu, var, bias_dtype = ctx.meta
        xd = _contig(x._data)
        x3 = _channel_view(xd)
        c = x3.shape[1]
        sg = np.empty(c, _F64)
        sgxc = np.empty(c, _F64)
        out = np.empty(xd.shape, xd.dtype) if needs[0] else None
        NK.bn_train_backward(_channel_view(_contig(g._data)), x3, mu, var,
                             None if weight is None else _f64(weight, c, 1.0), eps,
                             None if out is None else _channel_view(out), sg, sgxc)
        gx = gw = gb = None
        if needs[0]:
            gx = _wrap(out)
        if needs[1]:
            gw = _wrap((sgxc / np.sqrt(var + eps)).astype(weight._data.dtype))
        if needs[2]:
            gb = _wrap(sg.astype(bias_dtype))
        return (gx, gw, gb) + stats + (None, None)


class BatchNormEval(Function):
    """y = (x − running_mean)·w/√(running_var + eps) + b per channel;
    gx = g·w·r,   gw = Σ g·(x − rm)·r,   gb = Σ g,   g_rm = −Σ g·w·r,
    g_rv = −½·Σ g·(x − rm)·w·r³   (r = 1/√(running_var + eps))"""

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, eps):
        xd = _contig(x._data)
        x3 = _channel_view(xd)
        c = x3.shape[1]
        r = 1.0 / np.sqrt(_f64(running_var, c, 1.0) + eps)
        out = ctx.empty(xd.shape, xd.dtype)
        NK.bn_apply(x3, _f64(running_mean, c, 0.0), r * _f64(weight, c, 1.0),
                    _f64(bias, c, 0.0), _channel_view(out))
        ctx.save_for_backward(x, running_mean, running_var, weight)
        ctx.meta = (eps, None if bias is None else bias._data.dtype)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x, rm, rv, weight = ctx.saved_tensors
        nx, nrm, nrv, nw, nb = ctx.needs_input_grad[:5]
        dims, bshape, _ = _bn_dims(x)
        c = x.shape[1]
        r = reciprocal(sqrt(add(rv, ctx.meta[0])))             # [C]
        wr = r if weight is None else mul(weight, r)
        gx = grm = grv = gw = gb = None
        if nx:
            gx = mul(g, reshape(wr, bshape))
        if nrm or nb:
            sg = reshape(sum(g, dims), (c,))
            gb = sg if nb else None
            grm = neg(mul(sg, wr)) if nrm else None
        if nrv or nw:
            sgxc = reshape(sum(mul(g, sub(x, reshape(rm, bshape))), dims), (c,))
            gw = mul(sgxc, r) if nw else None
            grv = mul(mul(sgxc, mul(wr, mul(r, r))), -0.5) if nrv else None
        return _like((gx, grm, grv, gw), (x, rm, rv, weight)) + (_to(gb, ctx.meta[1]), None)


def _check_channel_vector(t, name, c, x):
    if t is None:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"batch_norm: {name} must be a Tensor or None, got {type(t).__name__}")
    if t.shape != (c,):
        raise ValueError(f"batch_norm: {name} must have shape ({c},) for an input of shape "
                         f"{tuple(x.shape)} (C = {c}), got {tuple(t.shape)}")
    if t._data.dtype not in FLOATS:
        raise TypeError(f"batch_norm: {name} must be float32 or float64, got {t._data.dtype}")
    return t


def _float_input(x, op):
    x = as_tensor(x, op=op)
    if x._data.dtype not in FLOATS:
        raise TypeError(f"{op}: expected a float32 or float64 input, got {x._data.dtype}")
    return x


def _number(v, name, op):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {v!r} ({type(v).__name__})")
    return float(v)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation of x [N, C, *] per channel C (PyTorch's F.batch_norm).

    training=True: normalise with the batch's mean and biased variance over every dim but 1,
    and update ``running_mean``/``running_var`` in place (when given) with ``momentum``
    (the running variance gets the unbiased variance). training=False: normalise with the
    running statistics. Then y = x̂·weight + bias (each [C], optional).
    """
    x = _float_input(x, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of at least 2 dims [N, C, *], got "
                         f"shape {tuple(x.shape)}")
    c = x.shape[1]
    running_mean = _check_channel_vector(running_mean, "running_mean", c, x)
    running_var = _check_channel_vector(running_var, "running_var", c, x)
    weight = _check_channel_vector(weight, "weight", c, x)
    bias = _check_channel_vector(bias, "bias", c, x)
    eps = _number(eps, "eps", "batch_norm")
    if eps < 0:
        raise ValueError(f"batch_norm: eps must be >= 0, got {eps}")
    if training:
        momentum = _number(momentum, "momentum", "batch_norm")
        if x._data.size // max(c, 1) <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got an input of shape {tuple(x.shape)}")
        return BatchNorm.apply(x, weight, bias, running_mean, running_var, momentum, eps)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var must be given in "
                         "evaluation mode (training=False)")
    return BatchNormEval.apply(x, running_mean, running_var, weight, bias, eps)


# ---------------------------------------------------------------------------------------------
# layer norm
# ---------------------------------------------------------------------------------------------
def _ln_vjp_ops(g, x, weight, k, eps, needs):
    """Layer norm's VJP with differentiable ops (for create_graph=True)."""
    dims = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    mu = mean(x, dims, keepdim=True)
    xc = sub(x, mu)
    r = reciprocal(sqrt(add(mean(mul(xc, xc), dims, keepdim=True), eps)))
    xh = mul(xc, r)
    gx = gw = gb = None
    if needs[0]:
        gh = g if weight is None else mul(g, weight)
        c1 = mean(gh, dims, keepdim=True)
        c2 = mean(mul(gh, xh), dims, keepdim=True)
        gx = mul(r, sub(sub(gh, c1), mul(xh, c2)))
    if needs[1]:
        gw = mul(g, xh)
        gw = sum(gw, lead) if lead else gw
    if needs[2]:
        gb = sum(g, lead) if lead else g
    return gx, gw, gb


class LayerNorm(Function):
    """y = (x − μ)·r·w + b, μ and σ² the mean and biased variance of each trailing
    normalized_shape block, r = 1/√(σ² + eps);   gx = r·(g·w − mean(g·w) − x̂·mean(g·w·x̂)),
    gw = Σ_rows g·x̂,   gb = Σ_rows g   (x̂ = (x − μ)·r)"""

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        xd = _contig(x._data)
        d = math.prod(xd.shape[xd.ndim - k:])
        x2 = xd.reshape(-1, d) if d else xd.reshape(0, 0)
        rows = x2.shape[0]
        mu = np.empty(rows, _F64)
        rstd = np.empty(rows, _F64)
        out = ctx.empty(xd.shape, xd.dtype)
        w = None if weight is None else _contig(weight._data).astype(xd.dtype, copy=False)
        b = None if bias is None else _contig(bias._data).astype(xd.dtype, copy=False)
        if d:
            NK.ln_forward(x2, None if w is None else w.reshape(d), None if b is None
                          else b.reshape(d), eps, out.reshape(rows, d), mu, rstd)
        ctx.save_for_backward(x, weight)
        ctx.meta = (k, eps, mu, rstd, d, None if bias is None else bias._data.dtype)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        k, eps, mu, rstd, d, bias_dtype = ctx.meta
        needs = ctx.needs_input_grad[:3]
        if is_grad_enabled():
            gx, gw, gb = _ln_vjp_ops(g, x, weight, k, eps, needs)
            return _like((gx, gw), (x, weight)) + (_to(gb, bias_dtype), None, None)
        xd = _contig(x._data)
        if d == 0:
            zeros = np.zeros(xd.shape[xd.ndim - k:], xd.dtype)
            return (_wrap(np.zeros(xd.shape, xd.dtype)) if needs[0] else None,
                    _wrap(zeros) if needs[1] else None,
                    _wrap(zeros.copy()) if needs[2] else None, None, None)
        gd = _contig(g._data)
        rows = mu.shape[0]
        w = None if weight is None else _contig(weight._data).astype(xd.dtype, copy=False)
        gx = np.empty(xd.shape, xd.dtype) if needs[0] else None
        sums = needs[1] or needs[2]
        gw = np.empty(d, _F64) if sums else None
        gb = np.empty(d, _F64) if sums else None
        NK.ln_backward(gd.reshape(rows, d), xd.reshape(rows, d), mu, rstd,
                       None if w is None else w.reshape(d),
                       None if gx is None else gx.reshape(rows, d), gw, gb)
        wshape = xd.shape[xd.ndim - k:]
        return (None if gx is None else _wrap(gx),
                _wrap(gw.astype(weight._data.dtype).reshape(wshape)) if needs[1] else None,
                _wrap(gb.astype(bias_dtype).reshape(wshape)) if needs[2]
                else None, None, None)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the trailing ``normalized_shape`` dims (PyTorch's
    F.layer_norm): each block is normalised with its own mean and biased variance, then
    y = x̂·weight + bias (each of shape normalized_shape, optional)."""
    x = _float_input(x, "layer_norm")
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape,
                                                                         bool):
        normalized_shape = (int(normalized_shape),)
    try:
        shape = tuple(int(s) for s in normalized_shape)
    except TypeError:
        raise TypeError(f"layer_norm: normalized_shape must be an int or a sequence of ints, "
                        f"got {normalized_shape!r}") from None
    k = len(shape)
    if k == 0 or k > x.ndim or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {list(shape)} does not match the "
                         f"trailing dims of an input of shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"layer_norm: {name} must be a Tensor or None, got "
                            f"{type(t).__name__}")
        if tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {name} must have shape {shape} (normalized_shape), "
                             f"got {tuple(t.shape)}")
    eps = _number(eps, "eps", "layer_norm")
    return LayerNorm.apply(x, weight, bias, k, eps)


# ---------------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------------
def dropout_threshold(p):
    """The integer threshold on 53 random bits: element kept iff bits >= ceil(p·2^53)."""
    return math.ceil(p * 2.0 ** 53)


class DropoutBackward(Function):
    """z = g·m·s (m the saved mask, s = 1/(1−p));   gg = gz·m·s (linear in g)"""

    @staticmethod
    def forward(ctx, g, mask, scale):
        gd = _contig(g._data)
        out = ctx.empty(gd.shape, gd.dtype)
        NK.dropout_apply(gd.reshape(-1), mask, scale, out.reshape(-1))
        ctx.meta = (mask, scale)
        return _wrap(out)

    @staticmethod
    def backward(ctx, gz):
        mask, scale = ctx.meta
        return DropoutBackward.apply(gz, mask, scale), None, None


class Dropout(Function):
    """z = x·m/(1−p), m_i = 1 with probability 1 − p (drawn once per call);
    gx = g·m/(1−p) with the saved mask m"""

    @staticmethod
    def forward(ctx, x, p):
        xd = _contig(x._data)
        key = int(get_generator().integers(0, 2 ** 64, dtype=np.uint64))
        scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
        out = ctx.empty(xd.shape, xd.dtype)
        mask = np.empty(xd.size, np.uint8)
        NK.dropout_forward(xd.reshape(-1), key, dropout_threshold(p), scale, out.reshape(-1),
                           mask)
        ctx.meta = (mask, scale)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        mask, scale = ctx.meta
        return DropoutBackward.apply(g, mask, scale), None


def dropout(x, p=0.5, training=True):
    """Inverted dropout (PyTorch's F.dropout): in training, each element is zeroed with
    probability p and the rest are scaled by 1/(1−p); the draw follows ``tg.manual_seed``.
    training=False returns x unchanged."""
    p = _number(p, "p", "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = _float_input(x, "dropout")
    if not training:
        return x
    return Dropout.apply(x, p)
