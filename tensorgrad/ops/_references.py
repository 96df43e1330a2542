"""numpy references for the op registry (``registry.py``): what each op computes, written
with numpy. They are called with ndarrays in place of Tensors and compute in the inputs'
dtype, so a reference's result also gives the expected dtype.
"""
import numpy as np

from tensorgrad.random import get_generator


def ref_clamp(x, min=None, max=None):
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    return np.minimum(np.maximum(x, lo), hi)        # min > max gives max, as in PyTorch


def ref_maxmin(np_fn, np_arg):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return np_fn(x)
        if x.ndim == 0:
            return x, np.int64(0)
        return np_fn(x, axis=dim, keepdims=keepdim), np_arg(x, axis=dim, keepdims=keepdim)
    return ref


def ref_arg(np_arg):
    def ref(x, dim=None, keepdim=False):
        return np_arg(x, axis=dim, keepdims=keepdim) if dim is not None else np_arg(x)
    return ref


def ref_logsumexp(x, dim, keepdim=False):
    x = x.reshape(1) if x.ndim == 0 else x
    m = np.max(x, axis=dim, keepdims=True) if x.shape[dim] else np.zeros_like(x)
    r = np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True)) + m
    return r if keepdim else np.squeeze(r, axis=dim)


def ref_softmax(x, dim=-1):
    if x.ndim == 0:
        return np.ones_like(x)
    e = np.exp(x - np.max(x, axis=dim, keepdims=True)) if x.size else x
    return e / np.sum(e, axis=dim, keepdims=True)


def ref_log_softmax(x, dim=-1):
    return np.log(ref_softmax(x, dim))


def shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape


def ref_expand(x, *shape):
    shape = shape_arg(shape)
    lead = len(shape) - x.ndim
    return np.broadcast_to(x, tuple(x.shape[i - lead] if s == -1 else s
                                    for i, s in enumerate(shape)))


def ref_flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def ref_transpose(x, dim0=-2, dim1=-1):
    return x if x.ndim < 2 else np.swapaxes(x, dim0, dim1)


def ref_squeeze(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = (dim,) if isinstance(dim, int) else dim
    return np.squeeze(x, axis=tuple(d for d in dims if x.shape[d] == 1))


def ref_split(x, size_or_sections, dim=0):
    n = x.shape[dim]
    if isinstance(size_or_sections, int):
        cuts = range(size_or_sections, n, size_or_sections)
    else:
        cuts = np.cumsum(size_or_sections)[:-1]
    return tuple(np.split(x, list(cuts), axis=dim))


def ref_chunk(x, chunks, dim=0):
    if x.shape[dim] == 0:
        return (x,) * chunks            # as PyTorch: ``chunks`` empty pieces
    return ref_split(x, max(-(-x.shape[dim] // chunks), 1), dim)


def ref_narrow(x, dim, start, length):
    start = start % x.shape[dim] if start < 0 else start     # a negative start counts back
    return np.take(x, range(start, start + length), axis=dim)


def ref_index(x, key):
    return x[key]


def ref_gather(x, dim, index):
    corner = tuple(slice(None) if i == dim else slice(0, n) for i, n in enumerate(index.shape))
    return np.take_along_axis(x[corner], index, axis=dim)


def ref_linear(x, weight, bias=None):
    y = x @ weight.T
    return y if bias is None else y + bias


def ref_cdist(x1, x2, squared=False, metric="euclidean"):
    diff = x1[:, None, :] - x2[None, :, :]
    if metric == "manhattan":
        return np.sum(np.abs(diff), axis=-1)
    if metric == "inner_product":
        return x1 @ x2.T
    if metric == "cosine":
        n1 = np.sqrt(np.sum(x1 * x1, axis=1, keepdims=True))
        n2 = np.sqrt(np.sum(x2 * x2, axis=1, keepdims=True))
        u1 = np.divide(x1, n1, out=np.zeros_like(x1), where=n1 > 0)
        u2 = np.divide(x2, n2, out=np.zeros_like(x2), where=n2 > 0)
        return np.clip(1 - u1 @ u2.T, 0, 2).astype(x1.dtype)
    d2 = np.sum(diff ** 2, axis=-1)
    return d2 if squared or metric == "sqeuclidean" else np.sqrt(d2)


def _reduce_rows(rows, reduction):
    if reduction == "none":
        return rows
    total = np.sum(rows)
    return total if reduction == "sum" else (total / rows.size if rows.size else np.nan)


def ref_cross_entropy(scores, labels, reduction="mean"):
    rows = np.array([ref_logsumexp(s, 0) - s[y] for s, y in zip(scores, labels)],
                    dtype=scores.dtype)
    return _reduce_rows(rows, reduction)


def ref_hinge(scores, labels, margin=1.0, reduction="mean"):
    rows = []
    for s, y in zip(scores, labels):
        m = np.maximum(0.0, s - s[y] + margin)
        rows.append(np.sum(m) - m[y])
    return _reduce_rows(np.array(rows, dtype=scores.dtype), reduction)


def ref_nll(logp, labels, weight=None, ignore_index=-100, reduction="mean"):
    keep = labels != ignore_index
    y = np.where(keep, labels, 0)
    w = (np.ones(logp.shape[1], logp.dtype) if weight is None else weight)[y] * keep
    rows = -w * logp[np.arange(len(y)), y]
    if reduction == "mean":
        return np.sum(rows) / np.sum(w)
    return _reduce_rows(rows, reduction)


def ref_masked_fill(x, mask, value):
    return np.where(mask, np.asarray(value, x.dtype), x)


def ref_mse(x, t, reduction="mean"):
    return _reduce_rows((x - t) ** 2, reduction)




def ref_batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
                   momentum=0.1, eps=1e-5):
    dims = (0,) + tuple(range(2, x.ndim))
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        mu, var = np.mean(x, axis=dims, keepdims=True), np.var(x, axis=dims, keepdims=True)
    else:
        mu, var = running_mean.reshape(bshape), running_var.reshape(bshape)
    y = (x - mu) / np.sqrt(var + x.dtype.type(eps))
    if weight is not None:
        y = y * weight.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    return y.astype(x.dtype)


def ref_layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mu, var = np.mean(x, axis=dims, keepdims=True), np.var(x, axis=dims, keepdims=True)
    y = (x - mu) / np.sqrt(var + x.dtype.type(eps))
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype)


def dropout_keep(key, n, p):
    """Dropout's keep-mask for ``n`` elements under ``key``: element i is kept when the top
    53 bits of SplitMix64's (i+1)-th output from ``key`` are >= ceil(p·2^53)."""
    z = np.uint64(key) + (np.arange(1, n + 1, dtype=np.uint64)
                          * np.uint64(0x9E3779B97F4A7C15))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)) >= np.uint64(int(np.ceil(p * 2.0 ** 53)))


def ref_dropout(x, p=0.5, training=True):
    """The op's draw repeated: one 64-bit key from the seeded generator, then the mask."""
    if not training:
        return x
    key = get_generator().integers(0, 2 ** 64, dtype=np.uint64)
    keep = dropout_keep(key, x.size, p).reshape(x.shape)
    scale = x.dtype.type(0.0 if p >= 1 else 1.0 / (1.0 - p))
    return np.where(keep, x * scale, x.dtype.type(0))
