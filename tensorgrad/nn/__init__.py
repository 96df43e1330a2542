"""tg.nn: modules (layers and containers), functional ops and initialisers, as in torch.nn.

    >>> import tensorgrad as tg
    >>> model = tg.nn.Sequential(tg.nn.Linear(64, 100), tg.nn.ReLU(), tg.nn.Linear(100, 10))
    >>> loss = tg.nn.functional.cross_entropy(model(x), y)
"""
from tensorgrad.nn import functional, init
from tensorgrad.nn.conv import AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d
from tensorgrad.nn.module import Module, Parameter
from tensorgrad.nn.modules import (
    CrossEntropyLoss,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    ModuleList,
    MSELoss,
    MultiClassHingeLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from tensorgrad.nn.norm import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LayerNorm",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "MultiClassHingeLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
]
