"""backward() and autograd.grad(): gradients as `grad` nodes the cluster expands.

Nothing is computed here. For each tensor that gets a gradient we record a node
`grad(outputs, seeds, wrt)`; all the nodes one call records form a batch, fetched together
in one round trip as soon as any of them is read.
"""

from __future__ import annotations

import numpy as np

from . import _grad_mode
from ._function import AccumulateGrad, Function, function_class, walk
from ._node import Node, leaf
from ._tensor import Tensor


def _as_list(x) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, Tensor) else list(x)


def _seeds(outputs: list[Tensor], grad_outputs: list) -> list[Node]:
    seeds = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if i < len(grad_outputs) else None
        if g is None:
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            seeds.append(leaf(np.ones(out._node.meta.shape, out._node.meta.dtype)))
            continue
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                f"output[{i}] has a shape of {out.shape}.")
        seeds.append(g._node)
    return seeds


def _check_outputs(outputs: list[Tensor]) -> None:
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn")


def _gradient(outputs: list[Tensor], seeds: list[Node], wrt: Tensor, wrt_node: Node,
              create_graph: bool) -> Tensor:
    node = Node("grad", tuple(o._node for o in outputs) + tuple(seeds) + (wrt_node,),
                {"n": len(outputs)}, wrt_node.meta, tracked=create_graph)
    out = Tensor(node)
    if create_graph:
        edges = tuple((_edge_of(o), 0) for o in outputs) + ((_edge_of(wrt), 0),)
        out.grad_fn = function_class("GradBackward")(node, edges)
    return out


def _edge_of(t: Tensor) -> Function | None:
    return t.grad_fn if t.grad_fn is not None else (t._accumulator() if t._requires_grad else None)


def _batch(tensors: list[Tensor]) -> None:
    nodes = [t._node for t in tensors if t._node.value is None]
    for n in nodes:
        n.batch = nodes


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None) -> None:
    outputs = _as_list(tensors)
    _check_outputs(outputs)
    seeds = _seeds(outputs, _as_list(grad_tensors))
    if inputs is not None:
        targets = [(t, t._node) for t in _as_list(inputs)]
    else:
        fns = walk([o.grad_fn for o in outputs if o.grad_fn is not None])
        targets = [(f.variable, f.node) for f in fns if isinstance(f, AccumulateGrad)
                   and f.variable is not None]
        targets += [(o, o._node) for o in outputs if o.grad_fn is None]
    updated = []
    with _grad_mode.set_grad_enabled(create_graph):
        for t, node in targets:
            g = _gradient(outputs, seeds, t, node, create_graph)
            t.grad = g if t.grad is None else t.grad + g
            updated.append(t.grad)
    _batch(updated)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False,
         materialize_grads=False) -> tuple:
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    _check_outputs(outs)
    seeds = _seeds(outs, _as_list(grad_outputs))
    reachable = {id(f) for f in walk([o.grad_fn for o in outs if o.grad_fn is not None])}
    results: list[Tensor | None] = []
    with _grad_mode.set_grad_enabled(create_graph):
        for i, t in enumerate(ins):
            fn = _edge_of(t)
            if fn is None:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            if id(fn) not in reachable and not any(o is t for o in outs):
                if not (allow_unused or materialize_grads):
                    raise RuntimeError(
                        "One of the differentiated Tensors appears to not have been used in "
                        "the graph. Set allow_unused=True if this is the desired behavior.")
                results.append(None)
                continue
            results.append(_gradient(outs, seeds, t, t._node, create_graph))
    _batch([r for r in results if r is not None])
    return tuple(results)
