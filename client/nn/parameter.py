"""torch.nn.parameter's import path."""

from ._module import Parameter

__all__ = ["Parameter"]
