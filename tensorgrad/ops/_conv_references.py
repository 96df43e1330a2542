"""numpy references for the convolution and pooling ops (``registry.py``'s "conv" family):
straightforward loops over the kernel offsets, with einsum over the channels. Called with
ndarrays in place of Tensors, they compute in the inputs' dtype.
"""
import numpy as np


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _batched(x):
    return (x[None], True) if x.ndim == 3 else (x, False)


def ref_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, g·Og + o, oh, ow] = Σ_{c, i, j} w[g·Og + o, c, i, j] ·
    xpad[n, g·Cg + c, oh·s + i·d, ow·s + j·d] (+ b)."""
    x, unbatched = _batched(x)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, _, h, w = x.shape
    o, cg, kh, kw = weight.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((n, o, oh, ow), x.dtype)
    og = o // groups
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = weight[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                           j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    if bias is not None:
        y += bias[:, None, None]
    return y[0] if unbatched else y


def ref_conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0,
                         groups=1, dilation=1):
    """Scatter every input pixel times the kernel into a full-size output, then crop the
    padding: the adjoint of conv2d."""
    x, unbatched = _batched(x)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    oph, opw = _pair(output_padding)
    n, cin, h, w = x.shape
    _, cog, kh, kw = weight.shape
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (w - 1) * sw + dw * (kw - 1) + 1 + opw
    full = np.zeros((n, cog * groups, full_h, full_w), x.dtype)
    cig = cin // groups
    for g in range(groups):
        xg = x[:, g * cig:(g + 1) * cig]
        wg = weight[g * cig:(g + 1) * cig]
        for i in range(kh):
            for j in range(kw):
                full[:, g * cog:(g + 1) * cog, i * dh:i * dh + sh * (h - 1) + 1:sh,
                     j * dw:j * dw + sw * (w - 1) + 1:sw] += np.einsum(
                         "nchw,co->nohw", xg, wg[:, :, i, j])
    y = full[:, :, ph:full_h - ph, pw:full_w - pw]
    if bias is not None:
        y = y + bias[:, None, None]
    return y[0] if unbatched else y


def _pool(x, kernel_size, stride, padding, fill, combine):
    x, unbatched = _batched(x)
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    h, w = x.shape[2:]
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    out = None
    for i in range(kh):
        for j in range(kw):
            s = xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            out = s.copy() if out is None else combine(out, s)
    return out[0] if unbatched else out


def ref_max_pool2d(x, kernel_size, stride=None, padding=0):
    """The largest value of each window (padding is −inf)."""
    return _pool(x, kernel_size, stride, padding, -np.inf, np.maximum)


def ref_avg_pool2d(x, kernel_size, stride=None, padding=0):
    """The mean of each window, padded cells counted as 0 (count_include_pad)."""
    kh, kw = _pair(kernel_size)
    s = _pool(x, kernel_size, stride, padding, 0, np.add)
    return (s / (kh * kw)).astype(x.dtype)
