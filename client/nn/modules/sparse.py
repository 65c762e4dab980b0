"""torch.nn.modules.sparse's import path."""

from .._layers import Embedding

__all__ = ["Embedding"]
