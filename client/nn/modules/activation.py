"""torch.nn.modules.activation's import path."""

from .._activation_layers import (CELU, SELU, Hardsigmoid, Hardswish, LogSigmoid, Mish,
                                  Softsign, Tanhshrink)
from .._attention import MultiheadAttention
from .._layers import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh

__all__ = ["CELU", "GELU", "Hardsigmoid", "Hardswish", "LeakyReLU", "LogSigmoid", "LogSoftmax",
           "Mish", "MultiheadAttention", "ReLU", "SELU", "SiLU", "Sigmoid", "Softmax",
           "Softsign", "Tanh", "Tanhshrink"]
