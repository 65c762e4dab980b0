"""torch.nn.modules.normalization's import path (batch norm: torch.nn.modules.batchnorm)."""

from .._layers import LayerNorm

__all__ = ["LayerNorm"]
