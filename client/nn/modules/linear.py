"""torch.nn.modules.linear's import path."""

from .._attention import NonDynamicallyQuantizableLinear
from .._layers import Identity, Linear

__all__ = ["Identity", "Linear", "NonDynamicallyQuantizableLinear"]
