"""remotegrad.nn.modules: the import path of torch.nn.modules (`from torch.nn.modules import
Module`, `torch.nn.modules.loss._Loss`, ...). The classes are remotegrad.nn's own."""

from .. import _layers as _L
from .._activation_layers import (CELU, ELU, SELU, Hardsigmoid, Hardswish, LogSigmoid, Mish,
                                  ReLU6, Softplus, Softsign, Tanhshrink)
from .._attention import MultiheadAttention
from .._module import Module
from .._norm import BatchNorm1d, BatchNorm2d
from .._rnn import GRU, LSTM, RNN, RNNBase
from .._transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                            TransformerEncoder, TransformerEncoderLayer)
from . import (activation, batchnorm, container, conv, dropout, flatten, linear, loss, module,
               normalization, pooling, rnn, sparse, transformer)

_FROM_LAYERS = ("AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "Conv2d", "CrossEntropyLoss",
                "Dropout", "Embedding", "Flatten", "GELU", "HuberLoss", "Identity",
                "KLDivLoss", "L1Loss", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax",
                "MSELoss", "MaxPool2d", "ModuleDict", "ModuleList", "NLLLoss", "ParameterDict",
                "ParameterList", "ReLU", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss",
                "Softmax", "Tanh")
globals().update({name: getattr(_L, name) for name in _FROM_LAYERS})

__all__ = ["BatchNorm1d", "BatchNorm2d", "CELU", "ELU", "GRU", "Hardsigmoid", "Hardswish",
           "LogSigmoid", "Mish", "ReLU6", "SELU", "Softplus", "Softsign", "Tanhshrink", "LSTM",
           "Module", "MultiheadAttention", "RNN",
           "RNNBase", "activation", "batchnorm", "container", "conv", "dropout", "flatten",
           "linear", "loss", "module", "normalization", "pooling", "rnn", "sparse",
           "transformer", "Transformer", "TransformerDecoder",
           "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer",
           *_FROM_LAYERS]
