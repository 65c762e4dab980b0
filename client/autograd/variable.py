"""torch.autograd.Variable, the pre-0.4 wrapper old tutorials still use: calling it gives a
Tensor (the data detached, requiring grad as asked), and every Tensor is an instance."""

from __future__ import annotations

from .. import _creation
from .._tensor import Tensor
from .._warn import warn_user

__all__ = ["Variable"]


class _VariableMeta(type):
    def __instancecheck__(cls, other) -> bool:
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    def __new__(cls, data=None, requires_grad: bool = False, volatile=None) -> Tensor:
        if volatile is not None:
            warn_user("volatile was removed and now has no effect. Use `with torch.no_grad():` "
                      "instead.")
        if data is None:
            return _creation.empty(0).requires_grad_(requires_grad)
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        return data.detach().requires_grad_(requires_grad)
