"""Normalisation and dropout layers: BatchNorm1d, BatchNorm2d, LayerNorm, Dropout.

Same names, arguments, defaults, parameters, buffers and state-dict keys as torch.nn, so
state dicts carry over. ``model.train()`` / ``model.eval()`` switch their behaviour: batch
norm uses the batch's statistics and updates its running statistics (buffers
``running_mean``, ``running_var``, ``num_batches_tracked``) in training, the running
statistics in evaluation; dropout is the identity in evaluation.
"""
import numbers

import numpy as np

from tensorgrad._tensor import _wrap
from tensorgrad.nn import functional as F
from tensorgrad.nn import init
from tensorgrad.nn.module import Module, Parameter
from tensorgrad.nn.modules import _int_arg

__all__ = ["BatchNorm1d", "BatchNorm2d", "Dropout", "LayerNorm"]


def _dtype(name, dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dt}")
    return dt


def _real(name, what, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a number, got {value!r}")
    return float(value)


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d (they differ only in the input dims)."""
    _dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.num_features = _int_arg(name, "num_features", num_features, 1)
        self.eps = _real(name, "eps", eps)
        self.momentum = None if momentum is None else _real(name, "momentum", momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dt = _dtype(name, dtype)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(c, dt))
            self.bias = Parameter(np.zeros(c, dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", _wrap(np.zeros(c, dt)))
            self.register_buffer("running_var", _wrap(np.ones(c, dt)))
            self.register_buffer("num_batches_tracked", _wrap(np.array(0, np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batch tracked."""
        if self.track_running_stats:
            for t, v in ((self.running_mean, 0), (self.running_var, 1),
                         (self.num_batches_tracked, 0)):
                t._data[...] = v
                t._version[0] += 1

    def reset_parameters(self):
        """Reset the running statistics, weight to 1 and bias to 0 (torch's defaults)."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _check_input(self, x):
        if x.ndim not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(f"{type(self).__name__}: expected {want} input, got "
                             f"{x.ndim}D input of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels "
                             f"(dim 1), got input of shape {tuple(x.shape)}")

    def forward(self, x):
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            n = self.num_batches_tracked
            n._data[...] += 1
            n._version[0] += 1
            factor = 1.0 / int(n._data) if self.momentum is None else self.momentum
        # training uses batch statistics; so does evaluation without running statistics
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if keep else None,
                            self.running_var if keep else None, self.weight, self.bias,
                            use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over [N, C] or [N, C, L] inputs, per channel C:
    y = (x − mean)/√(var + eps)·weight + bias, with the batch's statistics in training
    (updating the running ones: ``momentum``, or a cumulative average when it is None) and
    the running statistics in evaluation. weight = 1, bias = 0 initially (torch's defaults).
    """
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over [N, C, H, W] inputs, per channel C (see BatchNorm1d)."""
    _dims = (4,)


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims:
    y = (x − mean)/√(var + eps)·weight + bias, the statistics of each sample's block;
    weight (1) and bias (0) of shape normalized_shape when ``elementwise_affine``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(_int_arg("LayerNorm", "normalized_shape", s, 1)
                                      for s in normalized_shape)
        self.eps = _real("LayerNorm", "eps", eps)
        self.elementwise_affine = bool(elementwise_affine)
        dt = _dtype("LayerNorm", dtype)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dt))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        """weight 1, bias 0."""
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the
    rest by 1/(1−p) (seeded by ``tg.manual_seed``); the identity in evaluation."""

    def __init__(self, p=0.5):
        super().__init__()
        p = _real("Dropout", "p", p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
