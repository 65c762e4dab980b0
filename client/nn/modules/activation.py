"""torch.nn.modules.activation's import path."""

from .._attention import MultiheadAttention
from .._layers import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh

__all__ = ["GELU", "LeakyReLU", "LogSoftmax", "MultiheadAttention", "ReLU", "SiLU", "Sigmoid",
           "Softmax", "Tanh"]
