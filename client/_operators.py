"""Python operators on Tensor (`+`, `-`, `*`, `/`, `//`, `%`, `**`, `@`, comparisons and
bool logic), their reflected and in-place forms, and the methods whose PyTorch signature
is not one catalog op: max/min (values and indices), reshape/view/expand with -1."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
from remotegrad.proto import catalog

from ._ops import available, call
from ._tensor import Scalar, Tensor, apply

_OPERAND = (Tensor, *Scalar, np.ndarray, np.generic)


def _binary(name: str, reflected: bool = False, **fixed):
    def op(self, other):
        if not isinstance(other, _OPERAND):
            return NotImplemented
        args = (other, self) if reflected else (self, other)
        return call(name, args, dict(fixed))
    return op


def _inplace(name: str, **fixed):
    def op(self, other):
        if not isinstance(other, _OPERAND):
            return NotImplemented
        self._check_inplace()
        return self._assign(call(name, (self, other), dict(fixed)))
    return op


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


def _logic(name: str, bitwise: str):
    def op(self, other):
        if not isinstance(other, _OPERAND):
            return NotImplemented
        other_dtype = other.dtype.name if isinstance(other, Tensor) else (
            "bool" if isinstance(other, builtins.bool) else "int")
        if self._node.meta.dtype == "bool" and other_dtype == "bool":
            return call(name, (self, other), {})
        raise TypeError(f"{bitwise} on non-bool tensors is not supported by remotegrad yet")
    return op


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


OPERATORS = {
    "__add__": _binary("add"), "__radd__": _binary("add", True), "__iadd__": _inplace("add"),
    "__sub__": _binary("sub"), "__rsub__": _rsub, "__isub__": _inplace("sub"),
    "__mul__": _binary("mul"), "__rmul__": _binary("mul", True), "__imul__": _inplace("mul"),
    "__truediv__": _binary("div"), "__rtruediv__": _rtruediv, "__itruediv__": _inplace("div"),
    "__floordiv__": _binary("floor_divide"),
    "__rfloordiv__": _binary("floor_divide", True),
    "__ifloordiv__": _inplace("floor_divide"),
    "__mod__": _binary("remainder"), "__rmod__": _binary("remainder", True),
    "__imod__": _inplace("remainder"),
    "__pow__": _binary("pow"), "__rpow__": _binary("pow", True), "__ipow__": _inplace("pow"),
    "__matmul__": _binary("matmul"), "__rmatmul__": _binary("matmul", True),
    "__eq__": _binary("eq"), "__ne__": _binary("ne"), "__lt__": _binary("lt"),
    "__le__": _binary("le"), "__gt__": _binary("gt"), "__ge__": _binary("ge"),
    "__and__": _logic("logical_and", "&"), "__rand__": _logic("logical_and", "&"),
    "__or__": _logic("logical_or", "|"), "__ror__": _logic("logical_or", "|"),
    "__xor__": _logic("logical_xor", "^"), "__rxor__": _logic("logical_xor", "^"),
    "__invert__": _invert, "__contains__": _contains,
    "__neg__": lambda self: call("neg", (self,), {}),
    "__pos__": lambda self: self,
    "__abs__": lambda self: call("abs", (self,), {}),
}

# --- max / min: a reduction, a reduction with indices, or the elementwise form -------------
def _result(name: str) -> type:
    from ._select import return_type
    return return_type(name, ("values", "indices"))


MaxResult = _result("max")
MinResult = _result("min")


def _extreme(op: str, arg: str, pair: str, result: type):
    def method(self, dim=None, keepdim: builtins.bool = False, **kwargs):
        if isinstance(dim, Tensor):
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
    shape = infer_size(_sizes(shape), self.numel())
    return apply("reshape", self, shape=shape, torch_name="ViewBackward0")


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


METHODS: dict[str, Any] = {
    "max": _extreme("max", "argmax", "maximum", MaxResult),
    "min": _extreme("min", "argmin", "minimum", MinResult),
    "reshape": reshape, "view": reshape, "expand": expand,
    "reshape_as": lambda self, other: reshape(self, tuple(other.shape)),
    "view_as": lambda self, other: reshape(self, tuple(other.shape)),
    "expand_as": lambda self, other: expand(self, tuple(other.shape)),
}


def install() -> dict[str, Any]:
    """Add the operators and special methods to Tensor; returns the module functions."""
    for name, fn in OPERATORS.items():
        setattr(Tensor, name, fn)
    Tensor.__hash__ = object.__hash__
    for name, fn in METHODS.items():
        if name in ("max", "min") and name not in catalog.CATALOG:
            continue
        setattr(Tensor, name, fn)
    functions = {
        "reshape": lambda input, shape: reshape(input, shape),
        "broadcast_to": lambda input, size: expand(input, size),
    }
    if "max" in catalog.CATALOG:
        functions["max"] = lambda input, *a, **k: Tensor.max(input, *a, **k)
        functions["min"] = lambda input, *a, **k: Tensor.min(input, *a, **k)
    return functions
