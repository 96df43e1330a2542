"""Convolution and pooling layers (NCHW), with torch's constructor arguments, parameter
shapes (so state dicts carry over) and default initialisation."""
import math
import numbers

import numpy as np

from tensorgrad.nn import functional as F
from tensorgrad.nn import init
from tensorgrad.nn.module import Module, Parameter

__all__ = ["AvgPool2d", "Conv2d", "ConvTranspose2d", "MaxPool2d"]


def _int(module, name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{module}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{module}: {name} must be >= {minimum}, got {value}")
    return int(value)


def _pair(module, name, value, minimum):
    vals = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(vals) != 2:
        raise ValueError(f"{module}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(_int(module, name, v, minimum) for v in vals)


def _dtype(module, dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{module}: dtype must be float32 or float64, got {dt}")
    return dt


class _ConvNd(Module):
    """Shared by Conv2d and ConvTranspose2d: parameters, checks, torch's initialisation."""

    def __init__(self, name, in_channels, out_channels, kernel_size, stride, padding,
                 dilation, groups, bias, dtype, transposed):
        super().__init__()
        self.in_channels = _int(name, "in_channels", in_channels, 1)
        self.out_channels = _int(name, "out_channels", out_channels, 1)
        self.kernel_size = _pair(name, "kernel_size", kernel_size, 1)
        self.stride = _pair(name, "stride", stride, 1)
        self.padding = _pair(name, "padding", padding, 0)
        self.dilation = _pair(name, "dilation", dilation, 1)
        self.groups = _int(name, "groups", groups, 1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name}: in_channels {self.in_channels} and out_channels "
                             f"{self.out_channels} must both be divisible by groups "
                             f"{self.groups}")
        dt = _dtype(name, dtype)
        if transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dt))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's default: weight by kaiming_uniform_(a=√5), i.e. U(±1/√fan_in), and bias
        U(±1/√fan_in), fan_in = weight.shape[1]·kh·kw; drawn from ``tg.manual_seed``'s
        generator."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution y = conv2d(x, weight, bias, stride, padding, dilation, groups) with
    weight [out_channels, in_channels/groups, kh, kw] and bias [out_channels], float32 by
    default (``dtype=`` float64). Initialisation as torch's (``reset_parameters``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, dtype=None):
        super().__init__("Conv2d", in_channels, out_channels, kernel_size, stride, padding,
                         dilation, groups, bias, dtype, transposed=False)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution (torch's argument order: ..., output_padding, groups,
    bias, dilation) with weight [in_channels, out_channels/groups, kh, kw] and bias
    [out_channels]. Initialisation as torch's (``reset_parameters``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, dtype=None):
        super().__init__("ConvTranspose2d", in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, dtype, transposed=True)
        self.output_padding = _pair("ConvTranspose2d", "output_padding", output_padding, 0)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


class MaxPool2d(Module):
    """y = max_pool2d(x, kernel_size, stride, padding); stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """y = avg_pool2d(x, kernel_size, stride, padding) (padding counted in the divisor);
    stride defaults to kernel_size."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
