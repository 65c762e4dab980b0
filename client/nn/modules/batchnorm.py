"""torch.nn.modules.batchnorm's import path."""

from .._norm import BatchNorm1d, BatchNorm2d

__all__ = ["BatchNorm1d", "BatchNorm2d"]
