"""torch.nn.modules.flatten's import path."""

from .._layers import Flatten

__all__ = ["Flatten"]
