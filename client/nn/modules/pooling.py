"""torch.nn.modules.pooling's import path."""

from .._layers import AvgPool2d, MaxPool2d

__all__ = ["AvgPool2d", "MaxPool2d"]
