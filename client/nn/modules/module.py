"""torch.nn.modules.module's import path."""

from .._module import Module

__all__ = ["Module"]
