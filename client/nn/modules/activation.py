"""torch.nn.modules.activation's import path."""

from .._activation_layers import (CELU, ELU, SELU, Hardsigmoid, Hardswish, LogSigmoid, Mish,
                                  ReLU6, Softplus, Softsign, Tanhshrink)
from .._attention import MultiheadAttention
from .._layers import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh

__all__ = ["CELU", "ELU", "GELU", "Hardsigmoid", "Hardswish", "LeakyReLU", "LogSigmoid",
           "LogSoftmax", "Mish", "MultiheadAttention", "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid",
           "Softmax", "Softplus", "Softsign", "Tanh", "Tanhshrink"]
