"""grad_fn objects: PyTorch-named autograd nodes (`MulBackward0`, `AccumulateGrad`, ...).

They record what the client needs to run backward: the forward node each stands for and
the edges to the functions of its inputs (`next_functions`), down to the AccumulateGrad of
each leaf. The arithmetic of the gradient itself is done by the cluster.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from ._node import Node

if TYPE_CHECKING:
    from ._tensor import Tensor


class Function:
    __slots__ = ("__weakref__", "next_functions", "node")

    def __init__(self, node: Node, next_functions: tuple = ()) -> None:
        self.node = node
        self.next_functions = next_functions

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"


class AccumulateGrad(Function):
    """The end of every autograd path: a leaf tensor that requires grad."""

    __slots__ = ("_variable",)

    def __init__(self, variable: Tensor) -> None:
        super().__init__(variable._node)
        self._variable = weakref.ref(variable)

    @property
    def variable(self) -> Tensor:
        return self._variable()


_CLASSES: dict[str, type[Function]] = {}


def function_class(name: str) -> type[Function]:
    """One Python class per PyTorch node name, so `type(t.grad_fn).__name__` matches."""
    cls = _CLASSES.get(name)
    if cls is None:
        cls = _CLASSES[name] = type(name, (Function,), {"__slots__": ()})
    return cls


def walk(roots: list[Function]) -> list[Function]:
    """Every function reachable from the roots (iterative, each once)."""
    seen: set[int] = set()
    out: list[Function] = []
    stack = [r for r in roots if r is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        out.append(fn)
        stack.extend(f for f, _ in fn.next_functions if f is not None and id(f) not in seen)
    return out
