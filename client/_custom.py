"""User-defined autograd Functions (`class F(remotegrad.autograd.Function)`), as PyTorch's.

`forward` runs under no_grad, so its graph carries no gradient of its own. The outputs get
a grad_fn named `<Class>Backward`; when a backward reaches it, the user's `backward` is
called with the (lazy) gradients at the outputs, and the gradients it returns are seeded
into the inputs' histories, in the same request as everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._function import function_class
from ._grad_mode import is_grad_enabled, no_grad
from ._node import Node
from ._tensor import Tensor, _edge


class FunctionCtx:
    """The `ctx` of forward/backward: saved tensors and anything else set on it."""

    def __init__(self) -> None:
        self.saved_tensors: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.materialize_grads = True
        self.non_differentiable: tuple = ()

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tensors

    def save_for_forward(self, *tensors) -> None:
        self.saved_for_forward = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        pass

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value


@dataclass
class CustomSpec:
    cls: type
    ctx: FunctionCtx
    inputs: list[tuple[Node | None, Any]]   # per forward argument: (node, edge) or None
    outputs: list[Node]


class Function:
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)` (or the
    newer `forward(*args)` plus `setup_context(ctx, inputs, output)`), call `.apply`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode "
                                  "AD.")

    setup_context = None

    @classmethod
    def apply(cls, *args, **kwargs) -> Any:
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            if cls.setup_context is not None:
                out = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        if not (is_grad_enabled() and any(ctx.needs_input_grad)):
            return out
        return _record(cls, ctx, args, out)


def _record(cls: type, ctx: FunctionCtx, args: tuple, out):
    many = isinstance(out, tuple)
    outs = list(out) if many else [out]
    skip = {id(t) for t in ctx.non_differentiable}
    results, nodes = [], []
    for o in outs:
        if not isinstance(o, Tensor) or id(o) in skip or not o.is_floating_point():
            results.append(o)
            continue
        node = Node("detach", (o._node,), {}, o._node.meta, tracked=True)
        results.append(Tensor(node))
        nodes.append(node)
    if not nodes:
        return out
    inputs = [(a._node, _edge(a)) if isinstance(a, Tensor) and a.requires_grad else (None, None)
              for a in args]
    fn = function_class(f"{cls.__name__}Backward")(
        nodes[0], tuple((edge, 0) for _, edge in inputs if edge is not None))
    fn._custom = CustomSpec(cls, ctx, inputs, nodes)
    for r in results:
        if isinstance(r, Tensor) and r._node in nodes:
            r.grad_fn = fn
    return tuple(results) if many else results[0]
