"""tg.nn.functional (``F``): activations, linear layers, convolutions,
pooling and losses as functions.

The ops themselves live in ``tensorgrad.ops`` (one module per family, each op's forward and
VJP side by side, all listed in ``tensorgrad.ops.registry``); this module gathers the ones a
network uses under PyTorch's ``F.`` names, plus ``one_hot`` and ``flatten`` (``tg.flatten``,
torch.flatten's signature: ``start_dim=0``; ``nn.Flatten`` defaults to ``start_dim=1``).
"""
import numpy as np

from tensorgrad._tensor import _wrap
from tensorgrad.ops.activation import log_softmax, relu, sigmoid, softmax, tanh
from tensorgrad.ops.conv import avg_pool2d, conv2d, conv_transpose2d, max_pool2d
from tensorgrad.ops.linear import linear, linear_relu
from tensorgrad.ops.loss import cross_entropy, mse_loss, multiclass_hinge_loss, nll_loss
from tensorgrad.ops.norm import batch_norm, dropout, layer_norm
from tensorgrad.ops.shape import flatten

__all__ = [
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "layer_norm",
    "linear",
    "linear_relu",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "multiclass_hinge_loss",
    "nll_loss",
    "one_hot",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]


def one_hot(labels, num_classes):
    """Float32 one-hot rows [N, num_classes] for int labels [N] (no gradient)."""
    arr = labels._data if hasattr(labels, "_data") else np.asarray(labels)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError(f"one_hot: labels must be a 1-D integer array, got shape "
                         f"{tuple(arr.shape)} and dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes})")
    out = np.zeros((arr.shape[0], num_classes), np.float32)
    out[np.arange(arr.shape[0]), arr] = 1
    return _wrap(out)
