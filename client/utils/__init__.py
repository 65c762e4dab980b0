"""remotegrad.utils: data loading helpers, as torch.utils."""

from . import data

__all__ = ["data"]
