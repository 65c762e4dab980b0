"""Forward mode (jvp, jacfwd, linearize, hessian), derived from the reverse rules.

No op has a forward rule of its own. A Jacobian-vector product comes from the double-vjp
trick: for y = f(x), the vjp g(u) = Jᵀu is linear in the cotangent u, so differentiating
it with respect to u along a tangent v gives (∂g/∂u)ᵀ v = (Jᵀ)ᵀ v = J v. The cotangent u is
a dummy leaf of y's shape (its value never matters: g is linear in it, and the second
derivative never reads it). Both gradients are `grad` nodes in the same lazy graph, so a
jvp costs one round trip like everything else; the worker expands the second one from the
first, as it does for any gradient of a gradient.

jacfwd records g(u) once and then takes one such derivative per column (per element of
the input), seeded by a row of an identity matrix; hessian is jacfwd(jacrev(f)), as in
torch.func.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import _creation
from .._autograd import batch
from .._grad_mode import enable_grad
from .._shape import stack
from .._tensor import Tensor
from . import _core, _pytree
from ._reverse import _Diff, _settle, cast_like, grads, jacrev, only_tensors

__all__ = ["hessian", "jacfwd", "jvp", "linearize"]

_API = "jvp(f, primals, tangents)"
RANDOMNESS = ("error", "different", "same")


def check_randomness(randomness: str) -> None:
    if randomness not in RANDOMNESS:
        raise RuntimeError("Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")


class Linear:
    """The vjp g(u) = Jᵀu of outputs with respect to inputs, recorded once, from which any
    number of jvps are derived."""

    def __init__(self, outputs: list[Tensor], inputs: list[Tensor]) -> None:
        self.outputs, self.inputs = outputs, inputs
        self.live = [i for i, o in enumerate(outputs) if o.requires_grad]
        self.dummies = [_creation.ones_like(outputs[i]).requires_grad_(True)
                        for i in self.live]
        with enable_grad():
            self.g = grads([outputs[i] for i in self.live], inputs, self.dummies,
                           create_graph=True)

    def push(self, tangents: list[Tensor], create_graph: bool,
             only: int | None = None) -> list[Tensor]:
        """J·v for tangents v (one per input; with `only`, the one tangent of that input,
        the others zero): one tensor per output."""
        out = [_creation.zeros_like(o) for o in self.outputs]
        if self.live:
            ks = range(len(self.inputs)) if only is None else [only]
            seeds = [cast_like(t, self.inputs[k]) for t, k in zip(tangents, ks)]
            with enable_grad():
                found = grads([self.g[k] for k in ks], self.dummies, seeds, create_graph)
            for i, f in zip(self.live, found):
                out[i] = f
        return out


def _tangents(p_leaves: list, t_leaves: list) -> None:
    for p, t in zip(p_leaves, t_leaves):
        _core.check_tensor(p)
        if not isinstance(t, Tensor):
            raise RuntimeError(f"{_API}: Expected tangents to only contain Tensors, got "
                               f"{type(t)}")
        if tuple(t.shape) != tuple(p.shape):
            raise RuntimeError("Trying to set a forward gradient that has a different size "
                               "than that of the original Tensor, this is not supported. "
                               f"Tensor is of size {list(p.shape)} while the given forward "
                               f"gradient is of size {list(t.shape)}.")


def jvp(func: Callable, primals: Any, tangents: Any, *, strict: bool = False,
        has_aux: bool = False):
    """(func(*primals), J·tangents[, aux])."""
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{_API}: Expected primals to be a tuple. E.g. it should be valid "
                           "to call f(*primals).")
    p_leaves, p_spec = _pytree.flatten(primals)
    t_leaves, t_spec = _pytree.flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError(f"{_API}: Expected primals and tangents to have the same python "
                           "structure. For example, if primals is a tuple of 3 tensors, "
                           "tangents also must be. Got primals with structure "
                           f"{p_spec!r} and tangents with structure {t_spec!r}")
    if not p_leaves:
        raise RuntimeError(f"{_API}: Expected primals to contain at least one Tensor.")
    _tangents(p_leaves, t_leaves)
    with enable_grad():
        own = [_core.stand_in(p) for p in p_leaves]
        out, aux = _core.split_aux(func(*_pytree.unflatten(own, p_spec)), has_aux, _API)
        leaves, spec = _pytree.flatten(out)
        only_tensors(leaves, _API)
        keep = (_core.reaches_outside(leaves, own)
                or any(t.requires_grad for t in t_leaves))
        pushed = Linear(leaves, own).push(t_leaves, keep)
    value, aux = _settle(out, own), _settle(aux, own)
    tangent_out = _pytree.unflatten(pushed, spec)
    batch([t for t in _pytree.flatten((value, tangent_out, aux))[0] if isinstance(t, Tensor)])
    return (value, tangent_out, aux) if has_aux else (value, tangent_out)


def linearize(func: Callable, *primals: Any):
    """(func(*primals), jvp_fn): jvp_fn(*tangents) gives J·tangents at the same primals,
    from one recorded vjp."""
    with enable_grad():
        args, own = _core.stand_ins(primals)
        out = func(*args)
        leaves, spec = _pytree.flatten(out)
        only_tensors(leaves, "linearize(f, *primals)")
        lin = Linear(leaves, own)
    keep = _core.reaches_outside(leaves, own)

    def jvp_fn(*tangents):
        t_leaves, t_spec = _pytree.flatten(tangents)
        if t_spec != _pytree.flatten(primals)[1]:
            raise RuntimeError("linearize: Expected the tangents to have the structure of the "
                               f"primals: {_pytree.flatten(primals)[1]!r}, got {t_spec!r}")
        _tangents(own, t_leaves)
        found = lin.push(t_leaves, keep or any(t.requires_grad for t in t_leaves))
        batch(found)
        return _pytree.unflatten(found, spec)

    return _settle(out, own), jvp_fn


def _columns(lin: Linear, k: int, create_graph: bool) -> list[Tensor]:
    """d output / d input k for each output, shaped out.shape + x.shape, one jvp per
    element of input k."""
    x = lin.inputs[k]
    n = x.numel()
    if n == 0 or not lin.g[k].requires_grad:
        return [_creation.zeros(tuple(o.shape) + tuple(x.shape), dtype=o.dtype)
                for o in lin.outputs]
    basis = _creation.eye(n, dtype=x.dtype)
    cols = [lin.push([basis[j].reshape(tuple(x.shape))], create_graph, only=k)
            for j in range(n)]
    return [stack([c[i] for c in cols], -1).reshape(tuple(o.shape) + tuple(x.shape))
            for i, o in enumerate(lin.outputs)]


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """A function returning the Jacobian of func at argnums, column by column (forward
    mode, derived as above)."""
    check_randomness(randomness)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with enable_grad():
            d = _Diff(args, argnums)
            out, aux = _core.split_aux(func(*d.args, **kwargs), has_aux, _API)
            leaves, spec = _pytree.flatten(out)
            only_tensors(leaves, _API)
            keep = _core.reaches_outside(leaves, d.own)
            lin = Linear(leaves, d.own)
            per_input = [_columns(lin, k, keep) for k in range(len(d.own))]
        blocks = [d.regroup([cols[i] for cols in per_input]) for i in range(len(leaves))]
        jac = _pytree.unflatten(blocks, spec)
        aux = _settle(aux, d.own)
        batch([t for t in _pytree.flatten((jac, aux))[0] if isinstance(t, Tensor)])
        return (jac, aux) if has_aux else jac

    return wrapper


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """The Hessian of scalar-valued func at argnums: jacfwd(jacrev(func))."""
    return jacfwd(jacrev(func, argnums), argnums)
