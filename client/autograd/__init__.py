"""remotegrad.autograd: backward(), grad() and the functional API, as in torch.autograd."""

from .._autograd import backward, grad
from .._function import Function
from .._grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled
from . import functional

__all__ = ["Function", "backward", "enable_grad", "functional", "grad", "inference_mode",
           "no_grad", "set_grad_enabled"]
