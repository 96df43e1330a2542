"""Convolutions and pooling (NCHW, PyTorch's signatures and shape rules) as ops.

  conv2d            y = x ⋆ W + b       gx = conv_transpose2d(g, W),  gW = Conv2dWeightGrad(x, g),
                                        gb = Σ_{n,h,w} g
  conv_transpose2d  y = xᵀ-conv W + b   gx = conv2d(g, W),            gW = Conv2dWeightGrad(g, x),
                                        gb = Σ_{n,h,w} g
  Conv2dWeightGrad  gW = Σ g·im2col(x)ᵀ  (bilinear in x and g: its own VJP is a conv2d and a
                                        conv_transpose2d with the upstream gradient as weight)
  max_pool2d        y = window max      gx = MaxPoolScatter(g, argmax)  (its VJP: a gather)
  avg_pool2d        y = window mean     gx = AvgPool2dAdjoint(g)        (its VJP: avg_pool2d)

Every backward is made of these Functions, so double backward works. The kernels are in
``_kernels/conv.pyx`` (im2col/col2im + BLAS GEMMs over batch tiles whose im2col workspace
holds at most ``WORKSPACE`` bytes; single-pass pooling). Inputs of any layout are made
C-contiguous once before a kernel runs. Output sizes follow torch:
OH = ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1 for conv2d and the pools (d = 1), and
OH = (H − 1)·s − 2p + d·(k − 1) + output_padding + 1 for conv_transpose2d.
A 3-D input [C, H, W] is one unbatched image, as in torch.
"""
import numbers

import numpy as np

from tensorgrad._kernels import conv as CK
from tensorgrad._runtime import blas_single_thread, get_num_threads
from tensorgrad._tensor import _wrap
from tensorgrad.function import Function
from tensorgrad.ops._util import FLOATS, as_tensor
from tensorgrad.ops.shape import expand, reshape

__all__ = ["avg_pool2d", "conv2d", "conv_transpose2d", "max_pool2d"]

# Bytes of the im2col workspace: the batch is processed in tiles of as many images as fit
# (at least one). Small enough to stay in a core's L2 cache between im2col and the GEMM that
# reads it: on the 2-core development machine (1 MB L2 per core) conv2d forward+backward of
# (64,32,16,16)∗(64,32,3,3) took 39 ms at 512 KB, 53 ms at 4 MB (1 thread).
WORKSPACE = 512 * 1024


def _run(kernel, args, x_side, y_side, kk, weight=False):
    """Call a conv kernel. With several threads and at least as many batch tiles, the tiles
    run in parallel (an OpenMP prange, one single-threaded GEMM per tile and thread, BLAS held
    at one thread meanwhile): one wake-up of the threads per call instead of one per GEMM,
    and the same results under any thread count. Otherwise the tiles run in order and BLAS
    threads each GEMM."""
    n, c = x_side.shape[:2]
    o, oh, ow = y_side.shape[1:]
    ws = WORKSPACE // x_side.itemsize
    threads = get_num_threads()
    if threads > 1 and CK.parallel_units(n, c, kk, oh * ow, ws, o, weight) >= threads:
        with blas_single_thread():
            return kernel(*args, ws, threads)
    return kernel(*args, ws, 1)


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _no_bias(dtype):
    return np.empty(0, dtype)


# ------------------------------------------------------------------------------- Functions
class Conv2d(Function):
    """y[n,o] = Σ_{c,i,j} W[o,c,i,j]·x[n, c, s·h − p + d·i, s·w − p + d·j] + b[o] (per group);
    gx = conv_transpose2d(g, W),  gW = Σ_n g ⋆ x (Conv2dWeightGrad),  gb = Σ_{n,h,w} g"""

    @staticmethod
    def forward(ctx, x, weight, bias, geom, out_hw):
        stride, padding, dilation, groups = geom
        xd, wd = _c(x._data), _c(weight._data)
        n, _, h, w = xd.shape
        o, _, kh, kw = wd.shape
        if out_hw is None:
            out_hw = ((h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1,
                      (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1)
        out = ctx.empty((n, o) + tuple(out_hw), xd.dtype)
        bd = _c(bias._data) if bias is not None else _no_bias(xd.dtype)
        _run(CK.conv_forward, (xd, wd, bd, out, stride, padding, dilation, groups), xd, out,
             kh * kw)
        ctx.save_for_backward(x, weight)
        ctx.meta = geom
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        geom = ctx.meta
        nx, nw, nb = ctx.needs_input_grad[:3]
        gx = ConvTranspose2d.apply(g, w, None, geom, x.shape[2:]) if nx else None
        gw = Conv2dWeightGrad.apply(x, g, geom, w.shape) if nw else None
        gb = ChannelSum.apply(g) if nb else None
        return gx, gw, gb, None, None


class ConvTranspose2d(Function):
    """y = the adjoint of conv2d applied to x (col2im(Wᵀ·x)) + b;   gx = conv2d(g, W),  gW =
    Conv2dWeightGrad(g, x),  gb = Σ_{n,h,w} g"""

    @staticmethod
    def forward(ctx, x, weight, bias, geom, out_hw):
        stride, padding, dilation, groups = geom
        xd, wd = _c(x._data), _c(weight._data)
        out = ctx.empty((xd.shape[0], wd.shape[1] * groups) + tuple(out_hw), xd.dtype)
        bd = _c(bias._data) if bias is not None else _no_bias(xd.dtype)
        _run(CK.conv_input, (xd, wd, bd, out, stride, padding, dilation, groups), out, xd,
             wd.shape[2] * wd.shape[3])
        ctx.save_for_backward(x, weight)
        ctx.meta = geom
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        geom = ctx.meta
        nx, nw, nb = ctx.needs_input_grad[:3]
        gx = Conv2d.apply(g, w, None, geom, x.shape[2:]) if nx else None
        gw = Conv2dWeightGrad.apply(g, x, geom, w.shape) if nw else None
        gb = ChannelSum.apply(g) if nb else None
        return gx, gw, gb, None, None


class Conv2dWeightGrad(Function):
    """gW[o,c,i,j] = Σ_{n,h,w} y[n,o,h,w]·x[n, c, s·h − p + d·i, s·w − p + d·j] (per group);
    gx = conv_transpose2d(y, h),  gy = conv2d(x, h)  (h: the upstream gradient, W's shape)"""

    @staticmethod
    def forward(ctx, x, y, geom, wshape):
        stride, padding, dilation, groups = geom
        xd, yd = _c(x._data), _c(y._data)
        out = ctx.empty(tuple(wshape), xd.dtype)
        _run(CK.conv_weight, (xd, yd, out, stride, padding, dilation, groups), xd, yd,
             wshape[2] * wshape[3], weight=True)
        ctx.save_for_backward(x, y)
        ctx.meta = geom
        return _wrap(out)

    @staticmethod
    def backward(ctx, h):
        x, y = ctx.saved_tensors
        geom = ctx.meta
        nx, ny = ctx.needs_input_grad[:2]
        gx = ConvTranspose2d.apply(y, h, None, geom, x.shape[2:]) if nx else None
        gy = Conv2d.apply(x, h, None, geom, y.shape[2:]) if ny else None
        return gx, gy, None, None


class ChannelSum(Function):
    """z[c] = Σ_{n,h,w} g[n,c,h,w];   gg = h[c] broadcast over n, h, w"""

    @staticmethod
    def forward(ctx, g):
        gd = _c(g._data)
        ctx.meta = gd.shape
        out = ctx.empty((gd.shape[1],), gd.dtype)
        CK.channel_sum(gd.reshape(gd.shape[0], gd.shape[1], gd.shape[2] * gd.shape[3]), out)
        return _wrap(out)

    @staticmethod
    def backward(ctx, h):
        shape = ctx.meta
        return expand(reshape(h, (1, shape[1], 1, 1)), shape)


def _planes(a):
    """[N, C, H, W] → contiguous [N·C, H·W]."""
    a = _c(a)
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2] * a.shape[3])


class MaxPool2d(Function):
    """y = max of x over each window (padding never wins), argmax saved;   gx =
    MaxPoolScatter(g): g added at the argmax positions"""

    @staticmethod
    def forward(ctx, x, geom):
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = geom
        xd = x._data
        n, c, h, w = xd.shape
        out = ctx.empty((n, c, oh, ow), xd.dtype)
        idx = np.empty((n * c, oh * ow), np.int64)
        CK.max_pool_forward(_planes(xd), out.reshape(n * c, oh * ow), idx, h, w, oh, ow,
                            kh, kw, sh, sw, ph, pw)
        ctx.meta = (idx, xd.shape)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return MaxPoolScatter.apply(g, *ctx.meta), None


class MaxPoolScatter(Function):
    """gx = zeros with g[j] added at position idx[j] of its plane;   gg = h[idx]
    (MaxPoolGather)"""

    @staticmethod
    def forward(ctx, g, idx, in_shape):
        gd = g._data
        out = ctx.empty(in_shape, gd.dtype)
        n, c, h, w = in_shape
        CK.max_pool_scatter(_planes(gd), idx, out.reshape(n * c, h * w))
        ctx.meta = (idx, gd.shape)
        return _wrap(out)

    @staticmethod
    def backward(ctx, h):
        return MaxPoolGather.apply(h, *ctx.meta), None, None


class MaxPoolGather(Function):
    """y[j] = h[idx[j]] in each plane;   gh = MaxPoolScatter(g)"""

    @staticmethod
    def forward(ctx, h, idx, out_shape):
        hd = h._data
        out = ctx.empty(out_shape, hd.dtype)
        n, c, oh, ow = out_shape
        CK.max_pool_gather(_planes(hd), idx, out.reshape(n * c, oh * ow))
        ctx.meta = (idx, hd.shape)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return MaxPoolScatter.apply(g, *ctx.meta), None, None


class AvgPool2d(Function):
    """y = Σ window / (kh·kw) (padding counts as 0);   gx = AvgPool2dAdjoint(g): each window's
    g / (kh·kw) spread over its cells"""

    @staticmethod
    def forward(ctx, x, geom):
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = geom
        xd = x._data
        n, c, h, w = xd.shape
        out = ctx.empty((n, c, oh, ow), xd.dtype)
        CK.avg_pool_forward(_planes(xd), out.reshape(n * c, oh * ow), h, w, oh, ow,
                            kh, kw, sh, sw, ph, pw)
        ctx.meta = (geom, xd.shape)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        return AvgPool2dAdjoint.apply(g, *ctx.meta), None


class AvgPool2dAdjoint(Function):
    """gx = each window's g / (kh·kw) added to its cells;   gg = avg_pool2d(h)"""

    @staticmethod
    def forward(ctx, g, geom, in_shape):
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = geom
        gd = g._data
        n, c, h, w = in_shape
        out = ctx.empty(in_shape, gd.dtype)
        CK.avg_pool_adjoint(_planes(gd), out.reshape(n * c, h * w), h, w, oh, ow,
                            kh, kw, sh, sw, ph, pw)
        ctx.meta = geom
        return _wrap(out)

    @staticmethod
    def backward(ctx, h):
        return AvgPool2d.apply(h, ctx.meta), None, None


# ------------------------------------------------------------------------- argument checks
def _pair(v, what, op, low):
    """An int or a pair of ints, each >= low, as a tuple of two ints."""
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(vals) != 2 or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool)
                                 for a in vals):
        raise TypeError(f"{op}: {what} must be an int or a pair of ints, got {v!r}")
    vals = (int(vals[0]), int(vals[1]))
    if min(vals) < low:
        raise ValueError(f"{op}: {what} must be >= {low}, got {v!r}")
    return vals


def _image(x, op, what="input"):
    """(x as 4-D, whether it was a 3-D unbatched image)."""
    x = as_tensor(x, op=op)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: {what} must be 4-D [N, C, H, W] (or 3-D [C, H, W]), got "
                         f"shape {tuple(x.shape)}")
    if x._data.dtype not in FLOATS:
        raise TypeError(f"{op}: {what} must be float32 or float64, got {x._data.dtype}")
    if x.ndim == 3:
        return reshape(x, (1,) + tuple(x.shape)), True
    return x, False


def _weights(x, weight, bias, channels, op):
    """Check weight (4-D, x's dtype) and bias ([channels] or None)."""
    weight = as_tensor(weight, op=op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D, got shape {tuple(weight.shape)}")
    dt = x._data.dtype
    if weight._data.dtype != dt:
        raise TypeError(f"{op}: input and weight must have the same float dtype, got {dt} and "
                        f"{weight._data.dtype} (convert with .float() or .double())")
    if bias is not None:
        bias = as_tensor(bias, op=op)
        if tuple(bias.shape) != (channels,):
            raise ValueError(f"{op}: bias of shape {tuple(bias.shape)} does not match "
                             f"{channels} output channels (weight {tuple(weight.shape)})")
        if bias._data.dtype != dt:
            raise TypeError(f"{op}: bias dtype {bias._data.dtype} differs from input dtype "
                            f"{dt}")
    return weight, bias


def _groups(groups, op):
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return int(groups)


def _unbatch(y, unbatched):
    return reshape(y, tuple(y.shape[1:])) if unbatched else y


# ------------------------------------------------------------------------------- public ops
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in torch) of x [N, C, H, W] with weight
    [O, C/groups, kh, kw] and optional bias [O]: y [N, O, OH, OW] with
    OH = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1. im2col + one GEMM per group
    over batch tiles, the bias added in the epilogue."""
    op = "conv2d"
    x, unbatched = _image(x, op)
    stride = _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op, 0)
    dilation = _pair(dilation, "dilation", op, 1)
    groups = _groups(groups, op)
    wt = as_tensor(weight, op=op)
    weight, bias = _weights(x, wt, bias, wt.shape[0] if wt.ndim == 4 else None, op)
    _, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if cg * groups != c:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} has {c} channels but weight "
                         f"of shape {tuple(weight.shape)} with groups={groups} expects "
                         f"{cg * groups}")
    if o % groups:
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} has {o} output "
                         f"channels, not divisible by groups={groups}")
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if ekh > h + 2 * padding[0] or ekw > w + 2 * padding[1]:
        raise ValueError(f"{op}: kernel of size ({ekh}, {ekw}) (dilated) is larger than the "
                         f"padded input ({h + 2 * padding[0]}, {w + 2 * padding[1]}) "
                         f"(input {tuple(x.shape)}, weight {tuple(weight.shape)})")
    y = Conv2d.apply(x, weight, bias, (stride, padding, dilation, groups), None)
    return _unbatch(y, unbatched)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution (the adjoint of conv2d, torch's argument order) of x
    [N, Cin, H, W] with weight [Cin, Cout/groups, kh, kw] and optional bias [Cout]:
    OH = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1. One GEMM per
    group then col2im over batch tiles, the bias added as col2im's initial value."""
    op = "conv_transpose2d"
    x, unbatched = _image(x, op)
    stride = _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op, 0)
    dilation = _pair(dilation, "dilation", op, 1)
    output_padding = _pair(output_padding, "output_padding", op, 0)
    groups = _groups(groups, op)
    wt = as_tensor(weight, op=op)
    cout = wt.shape[1] * groups if wt.ndim == 4 else None
    weight, bias = _weights(x, wt, bias, cout, op)
    _, cin, h, w = x.shape
    if weight.shape[0] != cin:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} has {cin} channels but "
                         f"weight of shape {tuple(weight.shape)} expects {weight.shape[0]}")
    if cin % groups:
        raise ValueError(f"{op}: {cin} input channels are not divisible by groups={groups}")
    for k in range(2):
        if output_padding[k] >= stride[k] and output_padding[k] >= dilation[k]:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    kh, kw = weight.shape[2:]
    out_hw = tuple((s - 1) * st - 2 * p + d * (k - 1) + op_ + 1 for s, st, p, d, k, op_ in
                   zip((h, w), stride, padding, dilation, (kh, kw), output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output size {out_hw} is not positive (input "
                         f"{tuple(x.shape)}, weight {tuple(weight.shape)}, padding {padding})")
    y = ConvTranspose2d.apply(x, weight, bias, (stride, padding, dilation, groups), out_hw)
    return _unbatch(y, unbatched)


def _pool_geom(x, kernel_size, stride, padding, op):
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == () or stride == [] else \
        _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size "
                         f"{kernel}")
    h, w = x.shape[2:]
    out = tuple((s + 2 * p - k) // st + 1
                for s, p, k, st in zip((h, w), padding, kernel, stride))
    if h + 2 * padding[0] < kernel[0] or w + 2 * padding[1] < kernel[1]:
        raise ValueError(f"{op}: kernel_size {kernel} is larger than the padded input "
                         f"({h + 2 * padding[0]}, {w + 2 * padding[1]}) (input "
                         f"{tuple(x.shape)})")
    return kernel, stride, padding, out


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over kernel_size windows of x [N, C, H, W] (stride defaults to kernel_size;
    padding counts as −inf). One pass that also records each window's argmax, which the
    backward scatters the gradient to."""
    x, unbatched = _image(x, "max_pool2d")
    geom = _pool_geom(x, kernel_size, stride, padding, "max_pool2d")
    return _unbatch(MaxPool2d.apply(x, geom), unbatched)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over kernel_size windows of x [N, C, H, W] (stride defaults to kernel_size;
    padded cells count as 0 and in the divisor: torch's count_include_pad=True)."""
    x, unbatched = _image(x, "avg_pool2d")
    geom = _pool_geom(x, kernel_size, stride, padding, "avg_pool2d")
    return _unbatch(AvgPool2d.apply(x, geom), unbatched)
