"""Sample inputs for the convolution and pooling ops (``registry.py``'s "conv" family):
strides, paddings, dilations, groups (incl. depthwise), rectangular kernels, batch 1, an
unbatched 3-D image, an empty batch and non-contiguous inputs; with ``big=True``, inputs
large enough for the im2col/col2im and pooling loops to run in parallel. Kept small
otherwise: gradgradcheck differentiates numerically through every element.
"""
import numpy as np

from tensorgrad._tensor import from_numpy
from tensorgrad.ops._samples import Sample, _tensor, bad_calls


def _nc(rng, shape, dtype):
    """A non-contiguous NCHW tensor: the H and W axes of a bigger array, every other row."""
    n, c, h, w = shape
    base = np.asarray(rng.standard_normal((n, c, w, 2 * h)), dtype)
    return from_numpy(base.swapaxes(2, 3)[:, :, ::2])


def conv2d_samples(dtype, rng, big=False):
    """conv2d: x [N, C, H, W], weight [O, C/groups, kh, kw], bias, stride/padding/dilation/
    groups as positional arguments (torch's order)."""
    def t(*s):
        return _tensor(rng, s, dtype)
    if big:
        yield Sample("big", (t(8, 16, 32, 32), t(16, 16, 3, 3), t(16), 1, 1))
        yield Sample("big-groups-stride", (t(8, 16, 34, 34), t(16, 4, 3, 3), t(16), 2, 1,
                                           1, 4))
        return
    yield Sample("3x3", (t(2, 3, 5, 5), t(4, 3, 3, 3), t(4)))
    yield Sample("padding1", (t(2, 3, 5, 5), t(4, 3, 3, 3), t(4), 1, 1))
    yield Sample("stride2-no-bias", (t(2, 2, 6, 5), t(3, 2, 3, 3), None, 2))
    yield Sample("dilation2", (t(1, 2, 7, 6), t(3, 2, 2, 3), t(3), 1, 1, 2))
    yield Sample("groups2", (t(2, 4, 5, 5), t(6, 2, 3, 3), t(6), 1, 1, 1, 2))
    yield Sample("depthwise", (t(1, 3, 5, 4), t(3, 1, 3, 3), t(3), 1, 1, 1, 3))
    yield Sample("rect-tuple-args", (t(2, 2, 6, 7), t(3, 2, 2, 3), t(3), (2, 1), (1, 0),
                                     (1, 2)))
    yield Sample("1x1", (t(2, 3, 4, 4), t(5, 3, 1, 1), t(5)))
    yield Sample("kernel-equals-input", (t(2, 2, 3, 3), t(2, 2, 3, 3), t(2)))
    yield Sample("unbatched", (t(2, 5, 5), t(3, 2, 3, 3), t(3), 1, 1))
    yield Sample("batch0", (t(0, 2, 5, 5), t(3, 2, 3, 3), t(3)))
    yield Sample("non-contiguous", (_nc(rng, (2, 2, 5, 6), dtype),
                                    _tensor(rng, (3, 2, 3, 3), dtype, layout="transposed"),
                                    t(3), 1, 1))


def conv_transpose2d_samples(dtype, rng, big=False):
    """conv_transpose2d: x [N, Cin, H, W], weight [Cin, Cout/groups, kh, kw], bias, stride,
    padding, output_padding, groups, dilation (torch's order)."""
    def t(*s):
        return _tensor(rng, s, dtype)
    if big:
        yield Sample("big", (t(8, 16, 32, 32), t(16, 16, 3, 3), t(16), 1, 1))
        yield Sample("big-stride2", (t(8, 16, 16, 16), t(16, 4, 3, 3), t(16), 2, 1, 1, 4))
        return
    yield Sample("3x3", (t(2, 3, 4, 4), t(3, 2, 3, 3), t(2)))
    yield Sample("stride2-padding1", (t(2, 3, 3, 4), t(3, 2, 3, 3), t(2), 2, 1))
    yield Sample("output-padding", (t(1, 2, 3, 3), t(2, 3, 3, 3), None, 2, 1, 1))
    yield Sample("groups2-dilation2", (t(2, 4, 3, 3), t(4, 1, 2, 2), t(2), 1, 0, 0, 2, 2))
    yield Sample("output-padding-over-stride", (t(1, 2, 3, 3), t(2, 2, 2, 2), t(2), 1, 0, 1,
                                                1, 2))
    yield Sample("rect-tuple-args", (t(1, 2, 3, 4), t(2, 2, 2, 3), t(2), (2, 1), (0, 1),
                                     (1, 0)))
    yield Sample("unbatched", (t(2, 3, 3), t(2, 3, 2, 2), t(3)))
    yield Sample("batch0", (t(0, 2, 3, 3), t(2, 3, 2, 2), t(3)))
    yield Sample("non-contiguous", (_nc(rng, (2, 2, 3, 4), dtype), t(2, 3, 3, 3), t(3), 1, 1))


def pool_samples(dtype, rng, big=False):
    """max_pool2d / avg_pool2d: x [N, C, H, W], kernel_size, stride, padding."""
    def t(*s):
        return _tensor(rng, s, dtype)
    if big:
        yield Sample("big", (t(8, 16, 64, 64), 2))
        yield Sample("big-overlap", (t(8, 16, 64, 64), 3, 2, 1))
        return
    yield Sample("2x2", (t(2, 3, 4, 4), 2))
    yield Sample("3x3-stride2-padding1", (t(2, 2, 7, 6), 3, 2, 1))
    yield Sample("overlapping-stride1", (t(1, 2, 5, 5), 3, 1))
    yield Sample("rect-tuple-args", (t(2, 2, 6, 7), (2, 3), (2, 1), (1, 1)))
    yield Sample("uneven-size", (t(2, 2, 5, 7), 2))
    yield Sample("unbatched", (t(3, 4, 4), 2))
    yield Sample("batch0", (t(0, 2, 4, 4), 2))
    yield Sample("non-contiguous", (_nc(rng, (2, 3, 4, 6), dtype), 2, 2, 1))


conv2d_errors = bad_calls(
    ("channel-mismatch", lambda t: (t(2, 3, 5, 5), t(4, 2, 3, 3)), ValueError),
    ("kernel-larger-than-padded-input", lambda t: (t(1, 1, 2, 2), t(1, 1, 3, 3)), ValueError),
    ("non-integer-stride", lambda t: (t(1, 1, 5, 5), t(1, 1, 3, 3), None, 1.5), TypeError),
    ("groups-do-not-divide", lambda t: (t(1, 4, 5, 5), t(3, 2, 3, 3), None, 1, 0, 1, 2),
     ValueError),
    ("2-d-input", lambda t: (t(5, 5), t(1, 1, 3, 3)), ValueError),
    ("bias-shape", lambda t: (t(1, 2, 5, 5), t(3, 2, 3, 3), t(2)), ValueError),
)

conv_transpose2d_errors = bad_calls(
    ("channel-mismatch", lambda t: (t(2, 3, 5, 5), t(4, 2, 3, 3)), ValueError),
    ("output-padding-too-big", lambda t: (t(1, 2, 3, 3), t(2, 2, 3, 3), None, 1, 0, 1),
     ValueError),
    ("non-integer-stride", lambda t: (t(1, 1, 5, 5), t(1, 1, 3, 3), None, 1.5), TypeError),
    ("negative-output-size", lambda t: (t(1, 1, 1, 1), t(1, 1, 1, 1), None, 1, 1),
     ValueError),
)


pool_errors = bad_calls(
    ("kernel-larger-than-input", lambda t: (t(1, 1, 2, 2), 3), ValueError),
    ("padding-over-half-kernel", lambda t: (t(1, 1, 6, 6), 2, 2, 2), ValueError),
    ("non-integer-kernel", lambda t: (t(1, 1, 6, 6), 2.5), TypeError),
    ("2-d-input", lambda t: (t(6, 6), 2), ValueError),
)
