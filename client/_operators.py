"""Python operators on Tensor (`+`, `-`, `*`, `/`, `//`, `%`, `**`, `@`, comparisons and
bool logic), their reflected and in-place forms, and the methods whose PyTorch signature
is not one catalog op: max/min (values and indices), reshape/view/expand with -1. Tensor
gets them from OperatorMethods."""

from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from remotegrad.proto import catalog

from ._ops import available, call, plain_call
from ._select import return_type
from ._strides import compute_stride, is_contiguous
from ._tensor_base import Scalar, TensorBase, apply
from ._tensor_meta import _wrap_dim
from ._views import geometry

if TYPE_CHECKING:
    from ._tensor import Tensor

_OPERAND = (TensorBase, *Scalar, np.ndarray, np.generic)


def _binary(name: str, left, right, other):
    """`left <op> right`, where `other` (one of them) is the operand that is not self."""
    if not isinstance(other, _OPERAND):
        return NotImplemented
    plain = plain_call(name)
    if plain and plain[1] == 2:  # what call does for it, without its frame
        return apply(plain[0], left, right, torch_name=plain[2])
    return call(name, (left, right), {})


def _inplace(name: str, self, other):
    if not isinstance(other, _OPERAND):
        return NotImplemented
    self._check_inplace((other,))  # as the method's: its overlap with self checked first
    plain = plain_call(name)
    if plain and plain[1] == 2:  # as _binary
        return self._assign(apply(plain[0], self, other, torch_name=plain[2]))
    return self._assign(call(name, (self, other), {}))


def _rsub(self, other):
    if not isinstance(other, _OPERAND):
        return NotImplemented
    return apply("sub", other, self, torch_name="RsubBackward1")


def _rtruediv(self, other):
    if not isinstance(other, _OPERAND):
        return NotImplemented
    if available("reciprocal") and isinstance(other, Scalar):
        return apply("mul", call("reciprocal", (self,), {}), other)  # as PyTorch records it
    return apply("div", other, self, torch_name="MulBackward0" if isinstance(other, Scalar)
                 else None)


def _logic(name: str, bitwise: str, self, other):
    if not isinstance(other, _OPERAND):
        return NotImplemented
    other_dtype = other.dtype.name if isinstance(other, TensorBase) else (
        "bool" if isinstance(other, builtins.bool) else "int")
    if self._node.meta.dtype == "bool" and other_dtype == "bool":
        return call(name, (self, other), {})
    raise TypeError(f"{bitwise} on non-bool tensors is not supported by remotegrad yet")


def _contains(self, element) -> builtins.bool:
    """`x in t`: one comparison and one round trip, not one per element."""
    if not isinstance(element, _OPERAND):
        raise RuntimeError("Tensor.__contains__ only supports Tensor or scalar, but you passed "
                           f"in a {type(element)}.")
    return builtins.bool(call("eq", (self, element), {}).any())


def _invert(self):
    if self._node.meta.dtype != "bool":
        raise TypeError("~ on non-bool tensors is not supported by remotegrad yet")
    return call("logical_not", (self,), {})


# --- max / min: a reduction, a reduction with indices, or the elementwise form -------------
MaxResult = return_type("max", ("values", "indices"))
MinResult = return_type("min", ("values", "indices"))


def _extreme(op: str, arg: str, pair: str, result: type):
    def method(self, dim=None, keepdim: builtins.bool = False, **kwargs):
        if isinstance(dim, TensorBase):
            return call(pair, (self, dim), {})
        if "other" in kwargs:
            return call(pair, (self, kwargs["other"]), {})
        if dim is None:
            return apply(op, self, torch_name=f"{op.capitalize()}Backward1")
        values = apply(op, self, dim=dim, keepdim=keepdim,
                       torch_name=f"{op.capitalize()}Backward0")
        indices = apply(arg, self, dim=dim, keepdim=keepdim)
        return result(values, indices)
    method.__name__ = op
    return method


# --- shape methods that take sizes as varargs ----------------------------------------------
def _sizes(args: tuple) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(builtins.int(s) for s in args)


def infer_size(shape: tuple, numel: int) -> tuple:
    if -1 not in shape:
        return shape
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if known == 0 or numel % known:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(numel // known if s == -1 else s for s in shape)


def reshape(self, *shape) -> Tensor:
    """As PyTorch's: a view where the strides allow one (ViewBackward0 of a contiguous
    tensor, else ReshapeAliasBackward0), else a contiguous copy (UnsafeViewBackward0)."""
    shape = infer_size(_sizes(shape), self.numel())
    geom = geometry(self)
    if compute_stride(geom[1], geom[2], shape) is not None or self.numel() != math.prod(shape):
        name = "ViewBackward0" if is_contiguous(geom) else "ReshapeAliasBackward0"
        return apply("reshape", self, shape=shape, torch_name=name)
    return apply("reshape", self.clone(), shape=shape, torch_name="UnsafeViewBackward0")


def view(self, *shape) -> Tensor:
    """A view, or PyTorch's error where the strides allow none (reshape would copy)."""
    shape = infer_size(_sizes(shape), self.numel())
    geom = geometry(self)
    if compute_stride(geom[1], geom[2], shape) is None and self.numel() == math.prod(shape):
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    return apply("reshape", self, shape=shape, torch_name="ViewBackward0")


def unflatten(self, dim: int, sizes) -> Tensor:
    """PyTorch's: a view splitting dim into sizes (one of them may be -1), with its
    errors (those of its inner checks wrapped as "unflatten got an unexpected error")."""
    shape = tuple(self.shape)
    if not shape:
        raise RuntimeError("unflatten got an unexpected error:\nDimension specified as 0 "
                           "but tensor has no dimensions")
    d = _wrap_dim(builtins.int(dim), len(shape))
    sizes = _sizes((sizes,))
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten got an unexpected error:\nonly one dimension can be "
                           "inferred")
    known = math.prod(s for s in sizes if s != -1)
    if (known != shape[d]) if -1 not in sizes else (not known or shape[d] % known):
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to "
                           f"the size of dim {builtins.int(dim)} ({shape[d]}) in the input "
                           "tensor")
    inner = tuple(shape[d] // known if s == -1 else s for s in sizes)
    return view(self, shape[:d] + inner + shape[d + 1:])


def expand(self, *sizes) -> Tensor:
    sizes = _sizes(sizes)
    lead = len(sizes) - self.dim()
    if lead < 0:
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(self.shape)}}}, size={list(sizes)}): the number of "
            f"sizes provided ({len(sizes)}) must be greater or equal to the number of dimensions "
            f"in the tensor ({self.dim()})")
    shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(sizes))
    return apply("expand", self, shape=shape)


_max = _extreme("max", "argmax", "maximum", MaxResult)
_min = _extreme("min", "argmin", "minimum", MinResult)


class OperatorMethods:
    """Tensor's Python operators, and the methods above."""

    __slots__ = ()

    def __add__(self, other):
        return _binary("add", self, other, other)

    def __radd__(self, other):
        return _binary("add", other, self, other)

    def __iadd__(self, other):
        return _inplace("add", self, other)

    def __sub__(self, other):
        return _binary("sub", self, other, other)

    __rsub__ = _rsub

    def __isub__(self, other):
        return _inplace("sub", self, other)

    def __mul__(self, other):
        return _binary("mul", self, other, other)

    def __rmul__(self, other):
        # PyTorch's __rmul__ is self.mul(other): the number second (for float16 its
        # kernel then multiplies by the number in float32, not by float16(number))
        return _binary("mul", self, other, other)

    def __imul__(self, other):
        return _inplace("mul", self, other)

    def __truediv__(self, other):
        return _binary("div", self, other, other)

    __rtruediv__ = _rtruediv

    def __itruediv__(self, other):
        return _inplace("div", self, other)

    def __floordiv__(self, other):
        return _binary("floor_divide", self, other, other)

    def __rfloordiv__(self, other):
        return _binary("floor_divide", other, self, other)

    def __ifloordiv__(self, other):
        return _inplace("floor_divide", self, other)

    def __mod__(self, other):
        return _binary("remainder", self, other, other)

    def __rmod__(self, other):
        return _binary("remainder", other, self, other)

    def __imod__(self, other):
        return _inplace("remainder", self, other)

    def __pow__(self, other):
        return _binary("pow", self, other, other)

    def __rpow__(self, other):
        return _binary("pow", other, self, other)

    def __ipow__(self, other):
        return _inplace("pow", self, other)

    def __matmul__(self, other):
        if isinstance(other, Scalar):  # matmul takes tensors only: Python's TypeError
            return NotImplemented
        return _binary("matmul", self, other, other)

    def __rmatmul__(self, other):
        if isinstance(other, Scalar):
            return NotImplemented
        return _binary("matmul", other, self, other)

    def __eq__(self, other):
        return _binary("eq", self, other, other)

    def __ne__(self, other):
        return _binary("ne", self, other, other)

    def __lt__(self, other):
        return _binary("lt", self, other, other)

    def __le__(self, other):
        return _binary("le", self, other, other)

    def __gt__(self, other):
        return _binary("gt", self, other, other)

    def __ge__(self, other):
        return _binary("ge", self, other, other)

    def __and__(self, other):
        return _logic("logical_and", "&", self, other)

    __rand__ = __and__

    def __or__(self, other):
        return _logic("logical_or", "|", self, other)

    __ror__ = __or__

    def __xor__(self, other):
        return _logic("logical_xor", "^", self, other)

    __rxor__ = __xor__
    __invert__ = _invert
    __contains__ = _contains

    def __neg__(self):
        return call("neg", (self,), {})

    def __pos__(self):
        return self

    def __abs__(self):
        return call("abs", (self,), {})

    # Defining __eq__ would leave the class unhashable; tensors hash by identity.
    __hash__ = object.__hash__

    max = _max
    min = _min
    reshape = reshape
    view = view
    unflatten = unflatten
    expand = expand

    def reshape_as(self, other) -> Tensor:
        return reshape(self, tuple(other.shape))

    def view_as(self, other) -> Tensor:
        return view(self, tuple(other.shape))

    def expand_as(self, other) -> Tensor:
        return expand(self, tuple(other.shape))


def functions() -> dict[str, Any]:
    """The module-level functions these methods also are."""
    out = {
        "reshape": lambda input, shape: reshape(input, shape),
        "unflatten": lambda input, dim, sizes: unflatten(input, dim, sizes),
        "broadcast_to": lambda input, size: expand(input, size),
    }
    if "max" in catalog.CATALOG:
        out["max"] = lambda input, *a, **k: _max(input, *a, **k)
        out["min"] = lambda input, *a, **k: _min(input, *a, **k)
    return out
