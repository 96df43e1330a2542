"""Parameter initialisation (in place, without recording a graph), as in torch.nn.init.

Random draws come from the global generator (``tensorgrad.random.get_generator()``), so
``tg.manual_seed(n)`` makes a model's initial weights repeatable. Fans follow PyTorch: for a
weight [out, in, ...], fan_in = in·prod(rest) and fan_out = out·prod(rest).
"""
import math

import numpy as np

from tensorgrad import random as _random

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _write(t, values):
    np.copyto(t._data, values, casting="unsafe")
    t._version[0] += 1
    return t


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation (PyTorch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(t):
    shape = t.shape
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a tensor with at least 2 dimensions, got shape "
                         f"{tuple(shape)}")
    rest = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * rest, shape[0] * rest


def uniform_(t, a=0.0, b=1.0):
    """Fill t with U(a, b)."""
    return _write(t, _random.get_generator().uniform(a, b, t.shape))


def normal_(t, mean=0.0, std=1.0):
    """Fill t with N(mean, std²)."""
    return _write(t, _random.get_generator().normal(mean, std, t.shape))


def constant_(t, value):
    return _write(t, value)


def zeros_(t):
    return _write(t, 0)


def ones_(t):
    return _write(t, 1)


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(−bound, bound) with bound = gain·√(3 / fan). nn.Linear uses a = √5, which gives
    bound = 1/√fan_in."""
    fan_in, fan_out = _fans(t)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std²) with std = gain / √fan."""
    fan_in, fan_out = _fans(t)
    fan = fan_in if mode == "fan_in" else fan_out
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return normal_(t, 0.0, std)


def xavier_uniform_(t, gain=1.0):
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return uniform_(t, -a, a)


def xavier_normal_(t, gain=1.0):
    """N(0, std²) with std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return normal_(t, 0.0, std)
