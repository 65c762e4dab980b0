"""torch.nn.modules.conv's import path."""

from .._layers import Conv2d

__all__ = ["Conv2d"]
