"""torch.nn.modules.dropout's import path."""

from .._layers import Dropout

__all__ = ["Dropout"]
