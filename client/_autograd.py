"""backward() and autograd.grad(): gradients as `grad` nodes the cluster expands.

Nothing is computed here. For each tensor that gets a gradient we record a node
`grad(outputs, seeds, wrt)`; all the nodes one call records form a batch, fetched together
in one round trip as soon as any of them is read.

Hooks on non-leaf tensors (and retain_grad) see the gradient at that tensor; a hook that
returns a new gradient changes what flows further back. Because a gradient is linear in
its seeds, the change is added as one more (output, seed) pair: the hooked tensor seeded
with (new - old). Leaf hooks run on the gradient before it is accumulated into `.grad`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from remotegrad.proto.catalog import attrs_key

from . import _grad_mode, _tensor_base, _views
from ._creation import tensor, zeros_like
from ._derivative import derivatives
from ._inplace import saved_views
from ._function import (
    FREED_MESSAGE,
    AccumulateGrad,
    Function,
    function_class,
    short_name,
    walk,
)
from ._node import Node, leaf
from ._shape import stack
from ._tensor_base import TensorBase, _edge, batch, new
from ._tensor_meta import torch_type_name

if TYPE_CHECKING:
    from ._tensor import Tensor

__all__ = ["backward", "batch", "grad"]


def _as_list(x) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, TensorBase) else list(x)


@dataclass
class _Pass:
    """One backward pass: the outputs and seeds, plus (hooked tensor, seed delta) pairs."""

    outs: list[tuple[Node, Function | None]]
    seeds: list[tuple[Node, Function | None]]
    create_graph: bool
    made: list[Tensor] = field(default_factory=list)

    def gradient(self, wrt: Node, fn: Function | None) -> Tensor:
        return self.gradients([(wrt, fn)])[0]

    def gradients(self, wrts: list[tuple[Node, Function | None]]) -> list[Tensor]:
        """The gradient with respect to each (node, its function), recorded together."""
        head = tuple(o for o, _ in self.outs) + tuple(s for s, _ in self.seeds)
        n = len(self.outs)
        # create_graph: PyTorch's GradMode in the backward, which a few of its rules read
        attrs = {"n": n, "create_graph": True} if self.create_graph else {"n": n}
        akey = _GRAD_AKEYS.get((n, self.create_graph))  # made once, not per node
        if akey is None:
            akey = _GRAD_AKEYS[(n, self.create_graph)] = attrs_key(attrs)
        nodes = [Node("grad", head + (wrt,), attrs, wrt.meta, self.create_graph, akey)
                 for wrt, _ in wrts]
        found: list = [None] * len(nodes)
        if self.create_graph:
            # PyTorch's grad_fns: the derivative's last op, over what the derivative reads
            # (None: it requires no grad). One lowering answers them all, as the engine's
            # one sweep will.
            roots = [f for _, f in self.outs + self.seeds if f is not None]
            functions = walk(roots + [f for _, f in wrts if f is not None])
            views, extra = saved_views(functions)  # PyTorch's saved results that are views
            functions += [f for f in views if f not in functions]
            found = [None if d is None else (d[0], [functions[k] for k in d[1]], d[2])
                     for d in derivatives(nodes, [f.node for f in functions], extra)]
        out = []
        for node, d in zip(nodes, found):
            t = new(node)
            if d is not None:
                name, reads, saves = d
                t.grad_fn = function_class(name)(node, tuple((f, 0) for f in reads))
                t.grad_fn._saves = saves  # the whole derivative's, not its last op's
            else:
                node.tracked = False  # requires no grad: a constant to later graphs
            self.made.append(t)
            out.append(t)
        return out

    def run_nonleaf_hooks(self, fn: Function) -> None:
        """Gradient at a hooked non-leaf; a hook's replacement reseeds what lies behind."""
        g = first = self.gradient(fn.node, fn)
        for hook in list(fn._hooks or ()):
            replaced = hook(g)
            if replaced is not None:
                g = _checked(replaced, g, "hook")
        owner = fn._retain() if fn._retain is not None else None
        if owner is not None:
            owner._grad = _copy(g, "CloneBackward0") if owner._grad is None else owner._grad + g
            self.made.append(owner._grad)
        if g is not first:
            self.outs.append((fn.node, fn))
            delta = g - first
            self.seeds.append((delta._node, _edge(delta) if self.create_graph else None))


    def run_custom(self, fn: Function) -> None:
        """A user-defined Function: its backward maps the gradients at its outputs to
        gradients at its inputs, which are seeded into the inputs' own histories."""
        spec = fn._custom
        grads = [self.gradient(node, fn) for node in spec.outputs]
        result = spec.cls.backward(spec.ctx, *grads)
        result = result if isinstance(result, tuple) else (result,)
        if len(result) != len(spec.inputs):
            raise RuntimeError(f"function {spec.cls.__name__}Backward returned an incorrect "
                               f"number of gradients (expected {len(spec.inputs)}, got "
                               f"{len(result)})")
        for (node, edge), g in zip(spec.inputs, result):
            if node is None or g is None:
                continue
            if not isinstance(g, TensorBase):
                raise TypeError(f"{spec.cls.__name__}.backward returned {type(g).__name__}; "
                                "expected a Tensor or None")
            if tuple(g._node.meta.shape) != tuple(node.meta.shape):
                g = g.expand(tuple(node.meta.shape))
            self.outs.append((node, edge))
            self.seeds.append((g._node, _edge(g) if self.create_graph and g.requires_grad
                               else None))


# The grad nodes' attribute key by their number of outputs and create_graph (the same few
# in every pass).
_GRAD_AKEYS: dict[tuple[int, bool], tuple] = {}


def _copy(g: Tensor, name: str) -> Tensor:
    """What PyTorch stores as a `.grad` made with create_graph=True: a copy of the gradient
    (CopyBackwards for a leaf's, CloneBackward0 for a retained one). Values never change
    under a node, so the copy shares the gradient's."""
    if g.grad_fn is None:
        return g
    out = new(g._node)
    out.grad_fn = function_class(name)(g._node, ((g.grad_fn, 0),))
    return out


def _checked(replacement, old: Tensor, what: str) -> Tensor:
    if not isinstance(replacement, TensorBase):
        raise TypeError(f"{what} returned {type(replacement).__name__}; expected a Tensor or None")
    if tuple(replacement.shape) != tuple(old.shape):
        raise RuntimeError(f"{what} changed the gradient's shape from {list(old.shape)} "
                           f"to {list(replacement.shape)}")
    return replacement


def _leaf_hooks(t: Tensor, g: Tensor) -> Tensor:
    for hook in list(t._hooks or ()):
        replaced = hook(g)
        if replaced is not None:
            g = _checked(replaced, g, "hook")
    return g


def _seeds(outputs: list[Tensor], grad_outputs: list) -> list[tuple[Node, Function | None]]:
    seeds: list[tuple[Node, Function | None]] = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if i < len(grad_outputs) else None
        if g is None:
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            seeds.append((_ones_leaf(out._node.meta), None))
            continue
        if not isinstance(g, TensorBase):
            g = tensor(g, dtype=out.dtype)
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                f"output[{i}] has a shape of {out.shape}.")
        seeds.append((g._node, _edge(g) if g.requires_grad else None))
    return seeds


_ONES: dict = {}


def _ones_leaf(meta) -> Node:
    """The implicit seed of a scalar output: a leaf of one read-only array per meta (a
    leaf's array is never written), not a new np.ones per backward(); the leaf's own meta
    kept with it, so a new leaf is only a Node holding them (leaf() checks and interns)."""
    key = (meta.shape, meta.dtype)  # a tuple's hash is C's, a frozen dataclass's Python's
    found = _ONES.get(key)
    if found is None:
        made = leaf(np.ones(meta.shape, meta.dtype))
        found = _ONES[key] = (made.value, made.meta)
    node = Node("leaf", (), {}, found[1])
    node.value = found[0]
    return node


def _check_outputs(outputs: list[Tensor]) -> None:
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn")


def _graph(outputs: list[Tensor]) -> list[Function]:
    """The functions behind the outputs, outputs first."""
    roots = [o.grad_fn for o in outputs if o.grad_fn is not None]
    order = _path(roots[0]) if len(roots) == 1 else None
    return walk(roots) if order is None else order


def _path(fn: Function) -> list[Function] | None:
    """walk([fn])'s order where fn's graph is one path (each function points to at most
    one function, once): the path itself, without walk's two passes over it (~6 us of a
    seed call's backward()). None where the graph branches or joins."""
    order = [fn]
    while True:
        nxt = None
        for f, _ in fn.next_functions:
            if f is not None:
                if nxt is not None:
                    return None
                nxt = f
        if nxt is None:
            return order
        order.append(nxt)
        fn = nxt


def _executed(order: list[Function], targets: list[Function] | None,
              capture: bool) -> list[Function]:
    """The functions PyTorch's engine runs (in `order`'s order): with no targets, all of
    them; else those from which a target can be reached, as its exec_info has them (its
    init_to_execute). A target of autograd.grad (`capture`) is not run itself, only its
    gradient taken, unless it lies on the way to another; a target of backward(inputs=...)
    is run (its gradient is accumulated there). Only what runs has its saved tensors
    checked, and freed."""
    if targets is None:
        return order
    wanted = {id(f) for f in targets if f is not None}
    needed: set[int] = set()
    for fn in reversed(order):  # every function after those it points to
        if ((not capture and id(fn) in wanted)
                or any(nxt is not None and (id(nxt) in needed or id(nxt) in wanted)
                       for nxt, _ in fn.next_functions)):
            needed.add(id(fn))
    return [fn for fn in order if id(fn) in needed]


_BOOL_SUB = ("Subtraction, the `-` operator, with two bool tensors is not supported. Use the "
             "`^` or `logical_xor()` operator instead.")


def _check_graph(executed: list[Function]) -> None:
    """PyTorch's errors when a function it runs cannot be: not differentiable, its saved
    tensors freed by an earlier backward, one of them changed in place since, or a
    CopySlices over a view that repeats elements."""
    repeating = len(_views.REPEATING) > 0  # almost always empty: no weakref made per node
    for fn in executed:
        if type(fn).__name__ == "NotImplemented":  # an overload PyTorch cannot differentiate
            op = {"div": "floor_divide", "scatter_add": "scatter"}.get(fn.node.op, fn.node.op)
            raise RuntimeError(f"derivative for aten::{op} is not implemented")
        if fn.node.op == "lerp_kernel" and fn.node.inputs[0].meta.dtype == "bool":
            # the weight's gradient, g * (end - start): PyTorch's sub refuses two bools here
            raise RuntimeError(_BOOL_SUB)
        if fn._freed and fn.saves_tensors:
            raise RuntimeError(FREED_MESSAGE)
        if repeating and fn in _views.REPEATING:  # a fill through an expanded view:
            raise RuntimeError(_views.OVERLAP)  # PyTorch's CopySlices writes through it
        for counter, version, is_result, meta in fn._saved:
            if counter[0] != version:
                raise RuntimeError(_modified(fn, counter, version, is_result, meta))


def _modified(fn: Function, counter: list, then: int, is_result: bool, meta) -> str:
    """PyTorch's message for a saved tensor changed in place before the backward."""
    what = f"[torch.{torch_type_name(meta.dtype)}Tensor {list(meta.shape)}]"
    owner = type(fn).__name__ if is_result else counter[1]
    if owner is not None:
        what += f", which is output 0 of {short_name(owner)},"
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {what} is at version {counter[0]}; expected version {then} "
            "instead. "
            "Hint: enable anomaly detection to find the operation that failed to compute its "
            "gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _prepare(outputs, grad_outputs) -> tuple[list[Tensor], list, list[Function]]:
    """The outputs (checked), their seeds, and the functions behind them."""
    outs = _as_list(outputs)
    _check_outputs(outs)
    seeds = _seeds(outs, _as_list(grad_outputs))
    return outs, seeds, _graph(outs)


def _start(outs: list[Tensor], seeds: list, create_graph: bool, order: list[Function],
           executed: list[Function]) -> _Pass:
    _check_graph(executed)
    p = _Pass([(o._node, o.grad_fn or _edge(o)) for o in outs], seeds, create_graph)
    first = _first_to_run(order)
    if first is None:  # no hooks, no retain_grad, no custom Function: nothing runs here
        return p
    run = {id(fn) for fn in executed}
    with _grad_mode.set_grad_enabled(create_graph):
        for fn in order[first:]:
            if not isinstance(fn, AccumulateGrad) and (fn._hooks or fn._retain is not None):
                p.run_nonleaf_hooks(fn)
            if fn._custom is not None and id(fn) in run:  # its backward, where PyTorch runs it
                p.run_custom(fn)
    return p


def _first_to_run(order: list[Function]) -> int | None:
    """The position of the first function with hooks, retain_grad or a custom backward
    (a loop: a generator's next() costs a frame per function)."""
    for k, fn in enumerate(order):
        if fn._custom is not None or ((fn._hooks or fn._retain is not None)
                                      and not isinstance(fn, AccumulateGrad)):
            return k
    return None


def _finish(p: _Pass, executed: list[Function], retain_graph: bool) -> None:
    if not retain_graph:  # PyTorch frees the saved tensors of the functions it ran
        for fn in executed:
            fn._freed = True
    batch(p.made)


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None,
             create_graph: bool = False, grad_variables=None, inputs=None) -> None:
    """Accumulate the gradients of `tensors` into the `.grad` of the leaves (or of
    `inputs`), as torch.autograd.backward."""
    if _tensor_base.TAPING and getattr(_tensor_base.TAPES, "tape", None) is not None:
        raise RuntimeError("backward() called inside a functorch transform. This is not "
                           "supported, please use functorch.grad or functorch.vjp instead or "
                           "call backward() outside of functorch transforms.")
    if grad_tensors is None:
        grad_tensors = grad_variables
    if retain_graph is None:
        retain_graph = create_graph
    outputs, seeds, order = _prepare(tensors, grad_tensors)
    _refused(outputs, _as_list(inputs) if inputs is not None else [])
    if inputs is not None:
        ins = _as_list(inputs)
        if not ins:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        targets = [(t, _edge(t)) for t in ins]
        if all(fn is not None for _, fn in targets):
            for t in ins:
                if t.grad_fn is not None:
                    t.retain_grad()  # as PyTorch: its hook puts the gradient in .grad
            # A leaf's every AccumulateGrad; an input the graph does not reach keeps its .grad
            targets = [(t, f) for t, fs in zip(ins, _grad_targets(order, outputs, ins))
                       for f in fs]
    else:
        targets = [(f.variable, f) for f in order
                   if isinstance(f, AccumulateGrad) and f.variable is not None]
        targets += [(o, _edge(o)) for o in outputs if o.grad_fn is None]
    if any(fn is None for _, fn in targets):
        raise RuntimeError("One of the differentiated Tensors does not require grad")
    executed = _executed(order, None if inputs is None else [f for _, f in targets],
                         capture=False)
    p = _start(outputs, seeds, create_graph, order, executed)
    with _grad_mode.grad_mode(create_graph):
        grads = p.gradients([(fn.node if isinstance(fn, AccumulateGrad) else t._node, fn)
                             for t, fn in targets])
        for (t, _), g in zip(targets, grads):
            if t.retains_grad and t.grad_fn._retain() is t:
                continue  # its retain_grad hook has put the gradient in .grad (once)
            if t.grad_fn is None:
                g = _leaf_hooks(t, g)
            if not create_graph:
                g = g.detach() if g.grad_fn is not None else g
            t._grad = _copy(g, "CopyBackwards") if t._grad is None else t._grad + g
            p.made.append(t._grad)
    _finish(p, executed, retain_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True, allow_unused: bool | None = None,
         is_grads_batched: bool = False, materialize_grads: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, as torch.autograd.grad."""
    tape = getattr(_tensor_base.TAPES, "tape", None) if _tensor_base.TAPING else None
    if tape is not None:  # vmap is tracing in this thread: the tape takes it (func/_batching)
        return tape.grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                         only_inputs, allow_unused, is_grads_batched, materialize_grads)
    if is_grads_batched:
        return _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                             allow_unused, materialize_grads)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    outs, seeds, order = _prepare(outputs, grad_outputs)
    ins = _as_list(inputs)
    _refused(outs, ins)
    per_input = _grad_targets(order, outs, ins)
    executed = _executed(order, [f for fs in per_input for f in fs], capture=True)
    p = _start(outs, seeds, create_graph, order, executed)
    results: list[Tensor | None] = []
    wanted: list[tuple[int, Node, Function]] = []
    with _grad_mode.set_grad_enabled(create_graph):
        for i, (t, fns) in enumerate(zip(ins, per_input)):
            if not fns:
                results.append(_unused(t, i, allow_unused, materialize_grads, create_graph))
                continue
            results.append(None)
            wanted += [(i, f.node if isinstance(f, AccumulateGrad) else t._node, f)
                       for f in fns]
        grads = p.gradients([(wrt, fn) for _, wrt, fn in wanted])
        for (i, _, _), g in zip(wanted, grads):
            results[i] = g if results[i] is None else results[i] + g
        for i, t in enumerate(ins):
            if results[i] is not None and t.grad_fn is None and per_input[i]:
                results[i] = _leaf_hooks(t, results[i])
    p.made.extend(r for r in results if r is not None)
    _finish(p, executed, retain_graph)
    return tuple(results)


def _refused(outs: list, ins: list) -> None:
    """PyTorch reads each output's and input's grad_fn: a view whose history it refuses
    raises (_views.refusal)."""
    for t in (*outs, *ins):
        if isinstance(t, TensorBase):
            _views.check_history(t)


def _grad_targets(order: list[Function], outs: list[Tensor],
                  ins: list[Tensor]) -> list[list[Function]]:
    """For each input of autograd.grad, the functions of the graph its gradient is taken
    at (none: unused). A leaf's are all its AccumulateGrads the graph reaches: PyTorch has
    one per leaf, whatever in-place changes (under no_grad) gave the leaf new values since
    the graph used it; here each value has its own, and their gradients add up."""
    reachable = {id(f) for f in order}
    found: dict[int, list[Function]] = {}
    for f in order:
        if isinstance(f, AccumulateGrad) and f.variable is not None:
            found.setdefault(id(f.variable), []).append(f)
    out = []
    for t, fn in zip(ins, _input_edges(ins)):
        is_output = any(o is t for o in outs)  # its gradient has the seed at least
        if isinstance(fn, AccumulateGrad):
            fns = list(found.get(id(t), []))
            if is_output and not any(f.node is t._node for f in fns):
                fns.append(fn)
        else:
            fns = [fn] if id(fn) in reachable or is_output else []
        out.append(fns)
    return out


def _input_edges(ins: list[Tensor]) -> list[Function]:
    """The function whose gradient autograd.grad takes for each input. A view made under
    no_grad of a tensor requiring grad requires grad with no history: as in PyTorch it has
    an AccumulateGrad of its own that no graph reaches (its gradient is unused)."""
    fns = []
    for t in ins:
        fn = _edge(t)
        if fn is None and t.requires_grad:
            fn = t._accumulator()
        if fn is None:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        fns.append(fn)
    return fns


def _unused(t: Tensor, i: int, allow_unused: bool, materialize: bool,
            create_graph: bool) -> Tensor | None:
    if not allow_unused:
        raise RuntimeError(
            f"The differentiated Tensor at index {i} appears to not have been used in the graph. "
            "Set allow_unused=True if this is the desired behavior.")
    if materialize:
        return zeros_like(t, requires_grad=create_graph)  # as PyTorch materializes them
    return None


def _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
                  materialize_grads) -> tuple:
    """is_grads_batched=True: one gradient per row of the grad_outputs' first dimension,
    all recorded before anything is fetched (one round trip)."""
    outs, gos = _as_list(outputs), _as_list(grad_outputs)
    rows = gos[0].shape[0]
    per_row = [grad(outs, inputs, [g[r] for g in gos], True, create_graph,
                    allow_unused=allow_unused, materialize_grads=materialize_grads)
               for r in range(rows)]
    if not retain_graph:
        order = _graph(outs)
        targets = [f for fs in _grad_targets(order, outs, _as_list(inputs)) for f in fs]
        for fn in _executed(order, targets, capture=True):
            fn._freed = True
    return tuple(None if col[0] is None else stack(list(col)) for col in zip(*per_row))
