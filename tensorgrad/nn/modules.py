"""Layers and containers: Linear, activations, Sequential, ModuleList, loss modules."""
import math
import numbers
import operator
from collections import OrderedDict

import numpy as np

from tensorgrad.nn import functional as F
from tensorgrad.nn import init
from tensorgrad.nn.module import Module, Parameter
from tensorgrad.ops.shape import flatten

__all__ = [
    "CrossEntropyLoss",
    "Flatten",
    "Identity",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "ModuleList",
    "MultiClassHingeLoss",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


def _int_arg(module, name, value, minimum=None):
    """``value`` as an int, checked: an integer (numpy's too, bool excluded), >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{module}: {name} must be an integer, got {value!r} "
                        f"({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{module}: {name} must be >= {minimum}, got {value}")
    return int(value)


class Linear(Module):
    """y = x·Wᵀ + b, with weight [out_features, in_features] and bias [out_features]
    (PyTorch's convention and shapes, so state dicts carry over), in ``dtype`` (float32 by
    default, or float64).

    Initialisation (PyTorch's default): weight and bias ~ U(−1/√in_features, 1/√in_features)
    — kaiming_uniform_ with a = √5 — drawn from the generator seeded by ``tg.manual_seed``.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = _int_arg("Linear", "in_features", in_features, 0)
        self.out_features = _int_arg("Linear", "out_features", out_features, 0)
        dt = np.dtype(np.float32 if dtype is None else dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"Linear: dtype must be float32 or float64, got {dt}")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dt))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """y = max(x, 0)"""

    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    """y = 1 / (1 + exp(−x))"""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """y = tanh(x)"""

    def forward(self, x):
        return F.tanh(x)


class Identity(Module):
    """y = x"""

    def forward(self, x):
        return x


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one (default: all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = _int_arg("Flatten", "start_dim", start_dim)
        self.end_dim = _int_arg("Flatten", "end_dim", end_dim)

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Softmax(Module):
    """F.softmax over dimension ``dim`` as a module."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = _int_arg(type(self).__name__, "dim", dim)

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """F.log_softmax over dimension ``dim`` as a module."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Sequential(Module):
    """Modules applied in order: ``Sequential(m0, m1, ...)`` or ``Sequential(OrderedDict)``.

    Indexable (an int gives a module, a slice a Sequential), with len() and iteration.
    A Linear directly followed by a ReLU runs as one fused F.linear_relu (identical values
    and gradients; the pre-activation is never stored).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, "
                                    f"not a Module")
                self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        n = len(mods)
        try:
            i = operator.index(idx)
        except TypeError:
            raise TypeError(f"Sequential: indices must be integers or slices, got "
                            f"{type(idx).__name__}") from None
        if not -n <= i < n:
            raise IndexError(f"Sequential: index {idx} out of range for {n} modules")
        return mods[i % n][1]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        mods = list(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            m = mods[i]
            if type(m) is Linear and i + 1 < n and type(mods[i + 1]) is ReLU:
                x = F.linear_relu(x, m.weight, m.bias)
                i += 2
                continue
            x = m(x)
            i += 1
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[idx]


class CrossEntropyLoss(Module):
    """F.cross_entropy as a module (softmax loss)."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, scores, labels):
        return F.cross_entropy(scores, labels, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MultiClassHingeLoss(Module):
    """F.multiclass_hinge_loss as a module (multiclass SVM loss)."""

    def __init__(self, margin=1.0, reduction="mean"):
        super().__init__()
        self.margin, self.reduction = margin, reduction

    def forward(self, scores, labels):
        return F.multiclass_hinge_loss(scores, labels, self.margin, self.reduction)

    def extra_repr(self):
        return f"margin={self.margin}, reduction={self.reduction!r}"


class MSELoss(Module):
    """F.mse_loss as a module."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
