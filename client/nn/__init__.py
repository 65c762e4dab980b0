"""remotegrad.nn: modules, parameters and the functional API, as torch.nn."""

from . import functional, init, utils
from ._layers import (
    AvgPool2d,
    MaxPool2d,
    BCELoss,
    BCEWithLogitsLoss,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    GELU,
    Identity,
    L1Loss,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ModuleList,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from ._module import Module, Parameter
from ._norm import BatchNorm1d, BatchNorm2d
from ._rnn import GRU, LSTM, RNN

__all__ = [
    "GRU", "LSTM", "RNN", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "BCELoss",
    "BCEWithLogitsLoss", "Conv2d",
    "CrossEntropyLoss", "Dropout",
    "Embedding", "MaxPool2d", "utils",
    "Flatten", "GELU", "Identity", "L1Loss", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax",
    "MSELoss", "Module", "ModuleList", "NLLLoss", "Parameter", "ReLU", "SiLU", "Sequential",
    "Sigmoid", "Softmax", "Tanh", "functional", "init",
]
