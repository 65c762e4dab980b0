"""The lazy Tensor: a handle on a graph node, with PyTorch's API.

Building a tensor records a node and checks its shape and dtype at once (errors surface at
the line that made them); nothing is computed until a value is needed (print, item(),
bool(), numpy(), ...), which costs one round trip for everything that value depends on.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
from remotegrad.proto.catalog import FLOATING

from . import _dtypes
from ._format import format_scalar, tensor_repr
from ._function import AccumulateGrad, Function, function_class
from ._grad_mode import is_grad_enabled
from ._node import Node, const, leaf, op_node

Scalar = (builtins.bool, builtins.int, builtins.float)


def apply(op: str, *operands: Any, torch_name: str | None = None, **attrs: Any) -> Tensor:
    """Record `op` over tensors and Python numbers; track it for autograd when needed."""
    tensors = [x for x in operands if isinstance(x, Tensor)]
    nodes = tuple(x._node if isinstance(x, Tensor) else _operand(x) for x in operands)
    track = is_grad_enabled() and any(t.requires_grad for t in tensors)
    node = op_node(op, nodes, attrs, tracked=False)
    from remotegrad.proto import catalog
    opdef = catalog.get(op)
    track = track and opdef.differentiable and node.meta.dtype in FLOATING
    node.tracked = track
    out = Tensor(node)
    if track:
        edges = tuple((_edge(x), 0) if isinstance(x, Tensor) else (None, 0) for x in operands)
        out.grad_fn = function_class(torch_name or opdef.torch_name or f"{op}Backward")(node, edges)
    return out


def _operand(x: Any) -> Node:
    if isinstance(x, Scalar):
        return const(x)
    if isinstance(x, np.ndarray):
        return leaf(x)
    raise TypeError(f"unsupported operand type {type(x).__name__} for a remotegrad op")


def _edge(t: Tensor) -> Function | None:
    if t.grad_fn is not None:
        return t.grad_fn
    if t._requires_grad:
        return t._accumulator()
    return None


class Tensor:
    __slots__ = (
        "__weakref__",
        "_acc",
        "_grad",
        "_node",
        "_requires_grad",
        "_retains_grad",
        "grad_fn",
    )

    def __init__(self, node: Node, requires_grad: builtins.bool = False) -> None:
        self._node = node
        self._requires_grad = requires_grad
        self.grad_fn: Function | None = None
        self._grad: Tensor | None = None
        self._acc: AccumulateGrad | None = None
        self._retains_grad = False

    # --- autograd attributes ------------------------------------------------------------
    @property
    def requires_grad(self) -> builtins.bool:
        return self.grad_fn is not None or self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: builtins.bool) -> None:
        if self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if flag and self._node.meta.dtype not in FLOATING:
            raise RuntimeError(
                "only Tensors of floating point and complex dtype can require gradients")
        self._requires_grad = builtins.bool(flag)

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> builtins.bool:
        return self.grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self._grad = value

    def retain_grad(self) -> None:
        self._retains_grad = True

    def _accumulator(self) -> AccumulateGrad:
        if self._acc is None or self._acc.node is not self._node:
            self._acc = AccumulateGrad(self)
        return self._acc

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from ._autograd import backward
        backward([self], None if gradient is None else [gradient], retain_graph,
                 create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        out = Tensor(op_node("detach", (self._node,), None, tracked=False))
        out._node.value = self._node.value
        return out

    @property
    def data(self) -> Tensor:
        return self.detach()

    @data.setter
    def data(self, other: Tensor) -> None:
        self._node = other._node

    # --- values ---------------------------------------------------------------------------
    def _value(self) -> np.ndarray:
        if self._node.value is None:
            from ._wire import materialize
            materialize([self._node])
        return self._node.value

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead.")
        return self._value()

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(
                f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._value().item()

    def tolist(self):
        return self._value().tolist()

    def __bool__(self) -> builtins.bool:
        if self.numel() != 1:
            raise RuntimeError(
                "Boolean value of Tensor with more than one value is ambiguous")
        return builtins.bool(self._value().item())

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> builtins.int:
        return builtins.int(self.item())

    def __index__(self) -> builtins.int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def __repr__(self) -> str:
        suffixes = []
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        return tensor_repr(self._value(), dtype=self._node.meta.dtype, suffixes=suffixes)

    def __format__(self, spec: str) -> str:
        if self.dim() == 0:
            return format_scalar(self._value(), spec)
        return object.__format__(self, spec)

    # --- shape and dtype -----------------------------------------------------------------
    @property
    def shape(self):
        from ._size import Size
        return Size(self._node.meta.shape)

    def size(self, dim: builtins.int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> builtins.int:
        return len(self._node.meta.shape)

    ndim = property(dim)

    def numel(self) -> builtins.int:
        return self._node.meta.numel

    def __len__(self) -> builtins.int:
        if not self.dim():
            raise TypeError("len() of a 0-d tensor")
        return self._node.meta.shape[0]

    @property
    def dtype(self) -> _dtypes.dtype:
        return _dtypes.from_name(self._node.meta.dtype)

    @property
    def device(self):
        from ._size import device
        return device("cpu")

    def to(self, dtype=None, *args, **kwargs) -> Tensor:
        name = _dtypes.resolve(kwargs.get("dtype", dtype if isinstance(dtype, _dtypes.dtype)
                                          else None))
        if name is None or name == self._node.meta.dtype:
            return self
        return apply("cast", self, dtype=name)

    def float(self) -> Tensor:
        return self.to(_dtypes.float32)

    def double(self) -> Tensor:
        return self.to(_dtypes.float64)

    def long(self) -> Tensor:
        return self.to(_dtypes.int64)

    def int(self) -> Tensor:
        return self.to(_dtypes.int32)

    def bool(self) -> Tensor:
        return self.to(_dtypes.bool)

    # --- arithmetic ----------------------------------------------------------------------
    def __add__(self, o): return apply("add", self, o)
    def __radd__(self, o): return apply("add", o, self)
    def __sub__(self, o): return apply("sub", self, o)
    def __rsub__(self, o): return apply("sub", o, self, torch_name="RsubBackward1")
    def __mul__(self, o): return apply("mul", self, o)
    def __rmul__(self, o): return apply("mul", o, self)
    def __truediv__(self, o): return apply("div", self, o)
    def __rtruediv__(self, o): return apply("div", o, self)
    def __neg__(self): return apply("neg", self)

    def __pow__(self, o):
        return apply("pow", self, o,
                     torch_name="PowBackward0" if isinstance(o, Scalar) else "PowBackward1")

    def __rpow__(self, o):
        return apply("pow", o, self, torch_name="PowBackward2")

    def __eq__(self, o): return apply("eq", self, o)  # noqa: E704
    def __ne__(self, o): return apply("ne", self, o)  # noqa: E704
    def __lt__(self, o): return apply("lt", self, o)  # noqa: E704
    def __le__(self, o): return apply("le", self, o)  # noqa: E704
    def __gt__(self, o): return apply("gt", self, o)  # noqa: E704
    def __ge__(self, o): return apply("ge", self, o)  # noqa: E704
    __hash__ = object.__hash__

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    neg = __neg__
    eq = __eq__
    ne = __ne__
    lt = __lt__
    le = __le__
    gt = __gt__
    ge = __ge__

    def exp(self): return apply("exp", self)
    def log(self): return apply("log", self)
    def sqrt(self): return apply("sqrt", self)

    # --- in place (optimisers, under no_grad) -------------------------------------------
    def _inplace(self, op: str, *operands) -> Tensor:
        if self.is_leaf and self._requires_grad and is_grad_enabled():
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation.")
        out = apply(op, self, *operands)
        if out._node.meta.dtype != self._node.meta.dtype:
            raise RuntimeError(
                f"result type {out.dtype.name.capitalize()} can't be cast to the desired output "
                f"type {self.dtype.name.capitalize()}")
        self._node = out._node
        if out.grad_fn is not None:
            self.grad_fn = out.grad_fn
        from ._wire import note_inplace
        note_inplace(self)
        return self

    def __iadd__(self, o): return self._inplace("add", o)
    def __isub__(self, o): return self._inplace("sub", o)
    def __imul__(self, o): return self._inplace("mul", o)
    def __itruediv__(self, o): return self._inplace("div", o)
    add_ = __iadd__
    sub_ = __isub__
    mul_ = __imul__
    div_ = __itruediv__

    def zero_(self) -> Tensor:
        self._node = leaf(np.zeros(self._node.meta.shape, self._node.meta.dtype))
        return self

    # --- reductions ----------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, dtype=None):
        return apply("sum", self, dim=_dims(dim), keepdim=keepdim,
                     torch_name="SumBackward0" if dim is None else "SumBackward1")

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        return apply("mean", self, dim=_dims(dim), keepdim=keepdim,
                     torch_name="MeanBackward0" if dim is None else "MeanBackward1")

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        p = 2.0 if p in ("fro", None) else builtins.float(p)
        return apply("norm", self, p=p, dim=_dims(dim), keepdim=keepdim)

    def all(self, dim=None, keepdim=False):
        return apply("all", self, dim=_dims(dim), keepdim=keepdim)

    def any(self, dim=None, keepdim=False):
        return apply("any", self, dim=_dims(dim), keepdim=keepdim)

    # --- shape ---------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_args(shape)
        shape = _infer_minus_one(shape, self.numel())
        return apply("reshape", self, shape=shape)

    view = reshape

    def expand(self, *shape):
        return apply("expand", self, shape=_shape_args(shape))


def _dims(dim):
    if dim is None or isinstance(dim, builtins.int):
        return dim
    return tuple(dim)


def _shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(builtins.int(s) for s in shape)


def _infer_minus_one(shape: tuple, numel: builtins.int) -> tuple:
    if -1 not in shape:
        return shape
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if shape.count(-1) > 1 or known == 0 or numel % known:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(numel // known if s == -1 else s for s in shape)
