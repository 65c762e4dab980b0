"""remotegrad.autograd: backward(), grad() and the functional API, as in torch.autograd."""

import sys
import types

from .._autograd import backward, grad
from .._custom import Function, FunctionCtx
from .._grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled
from . import forward_ad, functional
from .gradcheck import gradcheck, gradgradcheck  # the functions, as PyTorch binds them
from .variable import Variable

__all__ = ["Function", "FunctionCtx", "Variable", "backward", "enable_grad", "forward_ad",
           "functional", "grad", "gradcheck", "gradgradcheck", "inference_mode", "no_grad",
           "set_grad_enabled"]


class _Package(types.ModuleType):
    """torch.autograd.gradcheck is the function, though a module of that name exists too.
    Importing `torch.autograd.gradcheck` under the torch alias loads the module under a
    new name, and the import system then binds it on this package: keep the function."""

    def __setattr__(self, name, value):
        if name == "gradcheck" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
