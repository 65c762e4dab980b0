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
    HuberLoss,
    Identity,
    KLDivLoss,
    L1Loss,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    SmoothL1Loss,
    Softmax,
    Tanh,
)
from ._module import Module, Parameter
from ._activation_layers import (CELU, ELU, SELU, Hardsigmoid, Hardswish, LogSigmoid, Mish,
                                 ReLU6, Softplus, Softsign, Tanhshrink)
from ._norm import BatchNorm1d, BatchNorm2d
from ._attention import MultiheadAttention
from ._rnn import GRU, LSTM, RNN
from ._transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                           TransformerEncoder, TransformerEncoderLayer)
from . import modules  # noqa: E402  (torch.nn.modules's import path)

__all__ = [
    "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d",
    "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "GELU", "GRU", "HuberLoss",
    "Identity", "KLDivLoss", "L1Loss", "LSTM", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax",
    "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "MultiheadAttention",
    "NLLLoss", "Parameter", "ParameterDict", "ParameterList", "RNN", "ReLU", "Sequential",
    "SiLU", "Sigmoid", "SmoothL1Loss", "Softmax", "Tanh", "Transformer", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer", "functional",
    "init", "modules", "utils",
    "CELU", "ELU", "Hardsigmoid", "Hardswish", "LogSigmoid", "Mish", "ReLU6", "SELU", "Softplus",
    "Softsign", "Tanhshrink",
]
