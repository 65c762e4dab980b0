"""Reverse mode: grad, grad_and_value, vjp, jacrev, over remotegrad's autograd.grad.

Nothing is fetched here: every gradient is a `grad` node recorded into the same lazy graph
(see remotegrad.autograd), and each transform ties its results into one batch, so reading
any of them computes all of them in one round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import _creation
from .._autograd import batch
from .._autograd import grad as autograd_grad
from .._grad_mode import enable_grad
from .._shape import stack
from .._tensor import Tensor
from . import _core, _pytree

__all__ = ["grad", "grad_and_value", "jacrev", "vjp"]


def grads(outputs: list[Tensor], inputs: list[Tensor], seeds: list | None,
          create_graph: bool) -> list[Tensor]:
    """d(Σ seedᵢ·outputᵢ)/d input for each input; zeros where no output reaches it."""
    seeds = [None] * len(outputs) if seeds is None else list(seeds)
    kept = [(o, s) for o, s in zip(outputs, seeds) if o.requires_grad]
    found: tuple = (None,) * len(inputs)
    if kept and inputs:
        found = autograd_grad([o for o, _ in kept], inputs, [s for _, s in kept],
                              retain_graph=True, create_graph=create_graph,
                              allow_unused=True)
    return [_creation.zeros_like(x) if g is None else g for g, x in zip(found, inputs)]


def cast_like(seed: Tensor, like: Tensor) -> Tensor:
    return seed if seed.dtype == like.dtype else seed.to(like.dtype)


def only_tensors(leaves: list, api: str) -> None:
    for x in leaves:
        if not isinstance(x, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got "
                               f"unsupported type {type(x)}")


def _settle(tree: Any, own: list[Tensor]) -> Any:
    """Each tensor of tree detached unless it reaches beyond the transform's stand-ins."""
    def one(t):
        if isinstance(t, Tensor) and t.requires_grad and not _core.reaches_outside([t], own):
            return t.detach()
        return t
    return _pytree.tree_map(one, tree)


class _Diff:
    """The positional args with stand-ins at argnums, grouped per argnum."""

    def __init__(self, args: tuple, argnums: Any) -> None:
        self.single = not isinstance(argnums, tuple)
        self.nums = _core.check_argnums(argnums, len(args))
        self.args = list(args)
        self.groups: list[tuple[_pytree.Spec, list[Tensor]]] = []
        for a in self.nums:
            self.args[a], made = _core.stand_ins(self.args[a])
            self.groups.append((_pytree.flatten(self.args[a])[1], made))
        self.own = [t for _, made in self.groups for t in made]

    def regroup(self, flat: list) -> Any:
        """Per-stand-in values in the arguments' structure (a tuple over tuple argnums)."""
        out, i = [], 0
        for spec, made in self.groups:
            out.append(_pytree.unflatten(flat[i:i + len(made)], spec))
            i += len(made)
        return out[0] if self.single else tuple(out)


def _scalar(out: Any, api: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(out)}")
    if out.dim() != 0:
        raise RuntimeError(f"{api}: Expected f(*args) to return a scalar Tensor, got tensor "
                           f"with {out.dim()} dims. Maybe you wanted to use the vjp or jacrev "
                           "APIs instead?")
    return out


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """A function returning (gradient of func at argnums, func's value) — with has_aux,
    (gradient, (value, aux))."""
    api = "grad_and_value(f)(*args)"

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with enable_grad():
            d = _Diff(args, argnums)
            out, aux = _core.split_aux(func(*d.args, **kwargs), has_aux, api)
            out = _scalar(out, api)
            keep = _core.reaches_outside([out], d.own)
            g = d.regroup(grads([out], d.own, None, keep))
        value = _settle(out, d.own)
        aux = _settle(aux, d.own)
        batch([t for t in _pytree.flatten((g, value, aux))[0] if isinstance(t, Tensor)])
        return (g, (value, aux)) if has_aux else (g, value)

    return wrapper


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of scalar-valued func at argnums (with has_aux,
    (gradient, aux))."""
    both = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = both(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable, *primals: Any, has_aux: bool = False):
    """(func(*primals), vjp_fn[, aux]); vjp_fn(cotangents) gives one vector-Jacobian
    product per primal (a tuple), and may be called any number of times."""
    api = "vjp(f, *primals)"
    with enable_grad():
        args, own = _core.stand_ins(primals)
        out, aux = _core.split_aux(func(*args), has_aux, api)
    leaves, spec = _pytree.flatten(out)
    only_tensors(leaves, api)
    keep = _core.reaches_outside(leaves, own)

    def vjp_fn(cotangents: Any, retain_graph: bool = True, create_graph: bool | None = None):
        c_leaves, c_spec = _pytree.flatten(cotangents)
        if c_spec != spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as "
                               "pytree structure of outputs to the function. cotangents: "
                               f"{c_spec.pprint()}, primal output: {spec.pprint()}")
        for c in c_leaves:
            _core.check_tensor(c)
        cg = keep or any(c.requires_grad for c in c_leaves) if create_graph is None \
            else create_graph
        seeds = [cast_like(c, o) for c, o in zip(c_leaves, leaves)]
        with enable_grad():
            found = grads(leaves, own, seeds, cg)
        batch(found)
        return _pytree.unflatten(found, _pytree.flatten(args)[1])

    result = (_settle(out, own), vjp_fn)
    return result + (_settle(aux, own),) if has_aux else result


def jacobian_rows(out: Tensor, inputs: list[Tensor], create_graph: bool) -> list[Tensor]:
    """d out / d x for each input x, shaped out.shape + x.shape: one gradient per element
    of out, seeded by a row of one identity matrix, stacked."""
    n = out.numel()
    if n == 0 or not out.requires_grad:
        return [_creation.zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype)
                for x in inputs]
    basis = _creation.eye(n, dtype=out.dtype)
    rows = [grads([out], inputs, [basis[r].reshape(tuple(out.shape))], create_graph)
            for r in range(n)]
    return [stack([row[i] for row in rows]).reshape(tuple(out.shape) + tuple(x.shape))
            for i, x in enumerate(inputs)]


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None, _preallocate_and_copy: bool = False) -> Callable:
    """A function returning the Jacobian of func at argnums, by reverse mode (chunk_size
    is accepted and has no effect: every row is recorded into one graph)."""
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
    api = "vjp(f, *primals)"

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with enable_grad():
            d = _Diff(args, argnums)
            out, aux = _core.split_aux(func(*d.args, **kwargs), has_aux, api)
            leaves, spec = _pytree.flatten(out)
            only_tensors(leaves, api)
            keep = _core.reaches_outside(leaves, d.own)
            blocks = [d.regroup(jacobian_rows(o, d.own, keep)) for o in leaves]
        jac = _pytree.unflatten(blocks, spec)
        aux = _settle(aux, d.own)
        batch([t for t in _pytree.flatten((jac, aux))[0] if isinstance(t, Tensor)])
        return (jac, aux) if has_aux else jac

    return wrapper
