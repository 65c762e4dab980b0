"""What the transforms share: argnums, the inputs a transform differentiates with respect
to, and the decision whether a result stays attached to the graph.

A transform never differentiates with respect to the caller's tensors themselves. Each
input it differentiates gets a stand-in of its own: a fresh leaf when the input requires no
grad, else a differentiable copy of it (so the caller's autograd still reaches the input
through the transform, as with torch.func). Gradients are taken at the stand-ins, so a
closure that uses the caller's tensor directly is a constant to the transform: nested
transforms never confuse one level's variable with another's.

A result is kept differentiable (create_graph) exactly when the function's output reaches
a leaf requiring grad that is not one of the transform's stand-ins: an enclosing transform's
stand-in, or a tensor of the caller's that requires grad. Otherwise it is returned
detached, as torch.func returns a plain tensor at the outermost level.
"""

from __future__ import annotations

from typing import Any

from .._function import AccumulateGrad, walk
from .._tensor import Tensor
from . import _pytree


def check_argnums(argnums: Any, nargs: int) -> tuple[int, ...]:
    """The argnums as non-negative positions (PyTorch's messages for bad ones)."""
    items = argnums if isinstance(argnums, tuple) else (argnums,)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in items):
        bad = argnums if not isinstance(argnums, tuple) else next(
            a for a in items if not isinstance(a, int) or isinstance(a, bool))
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(bad)}")
    if not items:
        raise RuntimeError("argnums must be non-empty")
    out = []
    for a in items:
        if not -nargs <= a < nargs:
            raise RuntimeError(f"Got argnum={a}, but only {nargs} positional inputs")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return tuple(out)


def check_tensor(x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    return x


def stand_in(x: Any) -> Tensor:
    """What a transform differentiates with respect to in place of x (see above)."""
    check_tensor(x)
    if x.requires_grad:
        return x.clone()
    return x.detach().requires_grad_(True)


def stand_ins(tree: Any) -> tuple[Any, list[Tensor]]:
    """`tree` with a stand-in for each tensor leaf, and those stand-ins in order."""
    leaves, spec = _pytree.flatten(tree)
    made = [stand_in(x) for x in leaves]
    return _pytree.unflatten(made, spec), made


def reaches_outside(tensors: list, own: list[Tensor]) -> bool:
    """Whether any of the tensors depends on a leaf requiring grad other than `own`."""
    mine = {id(t) for t in own}
    roots = []
    for t in tensors:
        if not isinstance(t, Tensor) or not t.requires_grad:
            continue
        if t.grad_fn is None:
            if id(t) not in mine:
                return True
            continue
        roots.append(t.grad_fn)
    for fn in walk(roots):
        if isinstance(fn, AccumulateGrad):
            v = fn.variable
            if v is not None and id(v) not in mine:
                return True
    return False


def detach_tree(tree: Any) -> Any:
    return _pytree.tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, tree)


def split_aux(out: Any, has_aux: bool, api: str) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) "
                           "if has_aux is True")
    return out
