"""torch.autograd.forward_ad: dual numbers (dual_level, make_dual, unpack_dual), derived from
the reverse rules.

No op has a forward rule of its own. A dual tensor is the primal's stand-in (a fresh leaf
that requires grad, or a differentiable alias when the primal already requires grad),
registered with its tangent v in the current level. Nothing is propagated while the
program computes: a tangent is derived when it is asked for, by the double-vjp trick
torch.func.jvp uses (client/func/_forward.py). For y = f(d₁, ..., dₖ), the vjp
g(u) = Σᵢ Jᵢᵀ u is linear in the cotangent u, so differentiating ⟨g(u), v⟩ with respect
to u gives J v = Σᵢ Jᵢ vᵢ, the tangent of y. The cotangent u is a dummy of y's shape whose
value never matters. Both gradients are `grad` nodes in the lazy graph, so reading a
tangent (unpack_dual(y).tangent, or printing y) is one round trip, like reading y; the
worker expands the second gradient from the first as it does any gradient of a gradient.

What the derivation makes visible, unlike PyTorch's dual tensors (docs/compatibility.md):
a dual tensor of a primal that requires no grad itself requires grad (the stand-in), so
results computed from it have a grad_fn (its repr hides it, as PyTorch prints none), and
an in-place op on it is refused as on any leaf that requires grad; ops
recorded under no_grad are not differentiated, so their results carry no tangent; a
tangent takes its primal's dtype (PyTorch keeps a float64 tangent of a float32 primal); a
custom autograd.Function's jvp is never called (the tangent comes from its backward; one
without a jvp raises PyTorch's NotImplementedError when its result's tangent is read).
"""

from __future__ import annotations

import functools
import weakref
from collections import namedtuple
from typing import Any

from .. import _tensor_base
from .._autograd import batch
from .._function import walk
from .._tensor import Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level",
           "make_dual", "unpack_dual"]

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


class _Level:
    """The one level PyTorch allows at a time: each dual's node → (dual, tangent)."""

    def __init__(self) -> None:
        self.duals: dict[int, tuple[Tensor, Tensor]] = {}
        self.cache: dict[int, tuple[Tensor, Tensor | None]] = {}  # y's node → y, tangent
        self.tangents: set[int] = set()  # derived tangents' nodes: no tangent of their own


_current: _Level | None = None
# Every stand-in made so far, which repr keeps hiding after its level (a plain tensor then,
# as in PyTorch, but one that requires grad here).
_stand_ins: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def enter_dual_level() -> int:
    """Enter a new forward grad level (0: PyTorch allows one at a time)."""
    global _current
    if _current is not None:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _current = _Level()
    _tensor_base.dual_repr = _repr_parts
    return 0


def exit_dual_level(*, level: int | None = None) -> None:
    """Exit the level: every tangent of it is forgotten (duals become plain tensors)."""
    global _current
    if _current is None:
        raise RuntimeError("Dual level must be a positive number.")
    if level is not None and level != 0:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that "
                           "was created. This is not supported.")
    _current = None


class dual_level:
    """Context manager (and decorator) for forward AD: `with dual_level(): ...`."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc: Any) -> None:
        exit_dual_level()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)
        return wrapper


def _check_level(level: int | None, what: str) -> _Level | None:
    if level is not None and (_current is None or level != 0):
        raise RuntimeError(f"Invalid level given to {what}")
    return _current


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A dual tensor with the value of `tensor` and forward gradient `tangent`."""
    if _current is None:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level "
                           "exists, make sure to enter_dual_level() first.")
    lvl = _check_level(level, "_make_dual")
    for what, t in (("primal", tensor), ("tangent", tangent)):
        if not t.is_floating_point():
            raise ValueError(f"Expected {what} to be floating point or complex, but got: "
                             f"{t.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError("Trying to set a forward gradient that has a different size than "
                           "that of the original Tensor, this is not supported. Tensor is of "
                           f"size {list(tensor.shape)} while the given forward gradient is of "
                           f"size {list(tangent.shape)}.")
    if _reached(lvl, tensor):
        raise RuntimeError("Making a dual Tensor based on a Tensor that already has a forward "
                           "gradient at the same level 0 is not supported.")
    # The stand-in: an alias (ViewBackward0, as PyTorch's) keeps the caller's autograd
    # reaching a primal that requires grad; else a fresh leaf.
    dual = (tensor.view(tuple(tensor.shape)) if tensor.requires_grad
            else tensor.detach().requires_grad_(True))
    lvl.duals[id(dual._node)] = (dual, tangent)
    _stand_ins[id(dual._node)] = dual
    return dual


def _reached(lvl: _Level | None, y: Any) -> list[tuple[Tensor, Tensor]]:
    """The (dual, tangent) pairs of the level that y depends on."""
    if lvl is None or not lvl.duals or not isinstance(y, Tensor) or not y.requires_grad:
        return []
    if id(y._node) in lvl.duals:
        return [lvl.duals[id(y._node)]]
    if y.grad_fn is None:
        return []
    return [lvl.duals[id(fn.node)] for fn in walk([y.grad_fn]) if id(fn.node) in lvl.duals]


def _tangent(lvl: _Level, y: Tensor) -> Tensor | None:
    """y's tangent at the level (None when y depends on no dual), recorded once per y."""
    found = lvl.cache.get(id(y._node))
    if found is not None and found[0]._node is y._node:
        return found[1]
    if id(y._node) in lvl.tangents:
        return None
    pairs = _reached(lvl, y)
    if not pairs:
        tangent = None
    elif len(pairs) == 1 and pairs[0][0]._node is y._node:
        tangent = pairs[0][1]  # a dual's own tangent, as given
    else:
        _check_custom(y, lvl)
        tangent = _push(y, pairs)
        lvl.tangents.add(id(tangent._node))
    lvl.cache[id(y._node)] = (y, tangent)
    return tangent


def _check_custom(y: Tensor, lvl: _Level) -> None:
    """PyTorch's error for a custom autograd.Function a dual flows into without a jvp
    staticmethod of its own (with one, the tangent is still derived from its backward)."""
    for fn in walk([y.grad_fn]):
        spec = getattr(fn, "_custom", None)
        if spec is None or "jvp" in vars(spec.cls) or not any(
                id(f.node) in lvl.duals for f in walk([fn])):
            continue
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")


def _push(y: Tensor, pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    from ..func import _core
    from ..func._forward import Linear
    duals = [d for d, _ in pairs]
    keep = (_core.reaches_outside([y], duals) or any(t.requires_grad for _, t in pairs))
    return Linear([y], duals).push([t for _, t in pairs], keep)[0]


def _primal(lvl: _Level | None, y: Tensor) -> Tensor:
    """y without its tangent: detached where its grad came only from the duals."""
    from ..func import _core
    pairs = _reached(lvl, y)
    if not pairs:
        return y
    if len(pairs) == 1 and pairs[0][0]._node is y._node and not y.is_leaf:
        return y.view(tuple(y.shape))
    if _core.reaches_outside([y], [d for d, _ in pairs]):
        return y.view(tuple(y.shape))
    return y.detach()


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """(primal, tangent) of a tensor: the tangent None when it depends on no dual."""
    lvl = _current
    if lvl is None or not isinstance(tensor, Tensor):
        return UnpackedDualTensor(tensor, None)
    if level is not None and level != 0:  # refused only for a tensor that has a tangent
        if _reached(lvl, tensor):
            raise RuntimeError("Invalid level given to _fw_primal")
        return UnpackedDualTensor(tensor, None)
    tangent = _tangent(lvl, tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    primal = _primal(lvl, tensor)
    batch([primal, tangent])  # reading either computes both, in one round trip
    return UnpackedDualTensor(primal, tangent)


def _repr_parts(y: Tensor) -> tuple[bool, Tensor | None]:
    """For repr: (whether y requires grad only through stand-ins, y's tangent or None)."""
    from ..func import _core
    if not isinstance(y, Tensor) or not y.requires_grad or not _stand_ins:
        return False, None
    tangent = None if _current is None else _tangent(_current, y)
    batch([y, tangent])  # the value and its tangent in one round trip
    if id(y._node) in _stand_ins:
        mine = [_stand_ins[id(y._node)]]
    else:
        mine = [d for fn in walk([y.grad_fn]) if (d := _stand_ins.get(id(fn.node)))
                is not None] if y.grad_fn is not None else []
    return bool(mine) and not _core.reaches_outside([y], mine), tangent
