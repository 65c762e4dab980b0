"""remotegrad.autograd.functional: vjp, jvp, jacobian, hessian, vhp, hvp.

Everything is recorded before anything is fetched: a Jacobian's rows are one `grad` node
each, stacked into one tensor, so reading it costs one round trip however many rows it
has. jvp uses the double-vjp trick (the vjp is linear in its cotangent, so differentiating
it with respect to that cotangent gives J·v), as PyTorch's own implementation does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _creation
from .._autograd import batch, grad
from .._grad_mode import enable_grad
from .._tensor import Tensor

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def _tuple(x, arg: str, fn: str) -> tuple[bool, tuple[Tensor, ...]]:
    is_tuple = isinstance(x, (tuple, list))
    items = tuple(x) if is_tuple else (x,)
    for i in items:
        if not isinstance(i, Tensor):
            kind = f"the elements of {arg}" if is_tuple else arg
            raise TypeError(f"The {kind} given to {fn} must be either a Tensor or a tuple of "
                            f"Tensors but the value at index 0 has type {type(i).__name__}.")
    return is_tuple, items


def _prepare(inputs: tuple[Tensor, ...], create_graph: bool) -> tuple[Tensor, ...]:
    if create_graph:
        return tuple(t if t.requires_grad else t.detach().requires_grad_(True) for t in inputs)
    return tuple(t.detach().requires_grad_(True) for t in inputs)


def _finish(items, create_graph: bool):
    out = tuple(t if create_graph or t is None else t.detach() for t in items)
    batch(out)
    return out


def _fill(grads, like: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return tuple(_creation.zeros_like(x) if g is None else g for g, x in zip(grads, like))


def _shape(is_tuple: bool, items: tuple):
    return items if is_tuple else items[0]


def _autograd_grad(outputs, inputs: tuple[Tensor, ...], grad_outputs=None,
                   create_graph: bool = False, retain_graph: bool | None = None) -> tuple:
    """autograd.grad over the outputs that require grad, None for an input none of them
    reaches (or for every input when none requires grad), as PyTorch's functional API
    does: a derivative that requires no grad (of a linear function) differentiates to 0."""
    gos = (None,) * len(outputs) if grad_outputs is None else tuple(grad_outputs)
    kept = [(o, g) for o, g in zip(outputs, gos) if o is not None and o.requires_grad]
    if not kept:
        return (None,) * len(inputs)
    return grad([o for o, _ in kept], inputs, [g for _, g in kept], retain_graph=retain_graph,
                create_graph=create_graph, allow_unused=True)


def _call(func: Callable, inputs: tuple[Tensor, ...], fn: str) -> tuple[bool, tuple]:
    out = func(*inputs)
    return _tuple(out, "outputs of the user-provided function", fn)


def _check_v(v, outputs: tuple[Tensor, ...], fn: str, against: str) -> tuple[Tensor, ...]:
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(f"The vector v can only be None if the {against} contains a "
                               "single Tensor with a single element.")
        return (_creation.ones_like(outputs[0]),)
    _, vs = _tuple(v, "v", fn)
    if len(vs) != len(outputs):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(outputs)} but got "
                           f"{len(vs)}.")
    for i, (a, b) in enumerate(zip(vs, outputs)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"Entry {i} in v has invalid size: should be {b.shape} but got "
                               f"{a.shape}.")
    return vs


def vjp(func: Callable, inputs, v=None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), vᵀ·J)."""
    in_tuple, ins = _tuple(inputs, "inputs", "vjp")
    with enable_grad():
        ins = _prepare(ins, create_graph)
        out_tuple, outs = _call(func, ins, "vjp")
        vs = _check_v(v, outs, "vjp", "user-provided function returns")
        grads = _autograd_grad(outs, ins, vs, create_graph=create_graph)
    return (_shape(out_tuple, _finish(outs, create_graph)),
            _shape(in_tuple, _finish(_fill(grads, ins), create_graph)))


def jvp(func: Callable, inputs, v=None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), J·v), by differentiating the vjp with respect to its cotangent."""
    in_tuple, ins = _tuple(inputs, "inputs", "jvp")
    with enable_grad():
        ins = _prepare(ins, create_graph)
        out_tuple, outs = _call(func, ins, "jvp")
        vs = _check_v(v, ins, "jvp", "input to the user-provided function")
        # Any value works (the vjp is linear in it); random values never coincide with a
        # tensor already in the graph.
        noise = np.random.default_rng()
        dummies = tuple(Tensor._from_array(noise.standard_normal(tuple(o.shape)).astype(
            o._node.meta.dtype)).requires_grad_(True) for o in outs)
        grads = _autograd_grad(outs, ins, dummies, create_graph=True)
        result = _fill(_autograd_grad(grads, dummies, vs, create_graph=create_graph), outs)
    return (_shape(out_tuple, _finish(outs, create_graph)),
            _shape(out_tuple, _finish(result, create_graph)))


def _rows(out: Tensor, ins: tuple[Tensor, ...], create_graph: bool) -> tuple[Tensor, ...]:
    """d out / d input for each input, shaped out.shape + input.shape; one grad per row."""
    from .. import stack
    n = out.numel()
    per_row = []
    for r in range(n):
        seed = np.zeros(n, dtype=out._node.meta.dtype)
        seed[r] = 1
        seed_t = Tensor._from_array(seed.reshape(tuple(out.shape)))
        per_row.append(_fill(_autograd_grad([out], ins, [seed_t], retain_graph=True,
                                            create_graph=create_graph), ins))
    result = []
    for i, x in enumerate(ins):
        if n == 0:
            result.append(_creation.zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype))
            continue
        rows = stack([row[i] for row in per_row])
        result.append(rows.reshape(tuple(out.shape) + tuple(x.shape)))
    return tuple(result)


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:
    """The Jacobian of func at inputs (reverse mode, every row in one round trip)."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode". '
                         f'Hint: "{strategy}" is not a valid strategy.')
    in_tuple, ins = _tuple(inputs, "inputs", "jacobian")
    with enable_grad():
        ins = _prepare(ins, create_graph)
        out_tuple, outs = _call(func, ins, "jacobian")
        blocks = [_finish(_rows(o, ins, create_graph), create_graph) for o in outs]
    batch([t for b in blocks for t in b])
    if not out_tuple:
        return _shape(in_tuple, blocks[0])
    return tuple(_shape(in_tuple, b) for b in blocks)


def _scalar_func(func: Callable, fn: str) -> Callable:
    """func, checked to return one Tensor of one element (returned as it is, as PyTorch's
    vhp and hvp return it)."""
    def checked(*inputs):
        out = func(*inputs)
        is_tuple, outs = _tuple(out, "outputs of the user-provided function", fn)
        if is_tuple and len(outs) != 1:
            raise RuntimeError(f"The function given to {fn} should return a single Tensor")
        if outs[0].numel() != 1:
            raise RuntimeError(f"The Tensor returned by the function given to {fn} should "
                               "contain a single element")
        return outs[0]
    return checked


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of a scalar function: the Jacobian of its gradient."""
    scalar = _scalar_func(func, "hessian")
    in_tuple, _ = _tuple(inputs, "inputs", "hessian")

    def gradient(*inp):
        out = scalar(*inp).squeeze()
        return _fill(_autograd_grad((out,), inp, create_graph=True), inp)

    result = jacobian(gradient, inputs, create_graph=create_graph)
    return result if in_tuple else result[0]


def _second_order(func: Callable, inputs, v, create_graph: bool, fn: str):
    in_tuple, ins = _tuple(inputs, "inputs", fn)
    with enable_grad():
        ins = _prepare(ins, create_graph)
        out = _scalar_func(func, fn)(*ins)
        vs = _check_v(v, ins, fn, "input to the user-provided function")
        first = _autograd_grad((out,), ins, create_graph=True)
        second = _autograd_grad(first, ins, vs, create_graph=create_graph)
    return (_finish((out,), create_graph)[0],
            _shape(in_tuple, _finish(_fill(second, ins), create_graph)))


def vhp(func: Callable, inputs, v=None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensor, Any]:
    """(func(inputs), vᵀ·H)."""
    return _second_order(func, inputs, v, create_graph, "vhp")


def hvp(func: Callable, inputs, v=None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensor, Any]:
    """(func(inputs), H·v). The Hessian of a twice continuously differentiable function is
    symmetric, so H·v equals vᵀ·H and one double backward gives it."""
    return _second_order(func, inputs, v, create_graph, "hvp")
