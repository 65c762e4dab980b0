"""remotegrad.autograd: backward() and grad(), as in torch.autograd."""

from .._autograd import backward, grad
from .._function import Function

__all__ = ["Function", "backward", "grad"]
