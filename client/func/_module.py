"""functional_call and stack_module_state: an nn.Module as a function of its parameters
and buffers, so that the transforms can differentiate and map over them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._shape import stack
from .._tensor import Tensor

__all__ = ["functional_call", "stack_module_state"]

_MISSING = object()


def _all_named(module) -> dict[str, Any]:
    """Every parameter and buffer name, tied ones (one tensor under two names) included."""
    found: dict[str, Any] = {}
    for kind in ("_parameters", "_buffers"):  # PyTorch's order: parameters, then buffers
        for prefix, m in module.named_modules(remove_duplicate=False):
            for name, t in getattr(m, kind).items():
                if t is not None:
                    found[f"{prefix}.{name}" if prefix else name] = t
    return found


def _merge(dicts: Any) -> dict[str, Any]:
    if isinstance(dicts, dict):
        return dict(dicts)
    merged: dict[str, Any] = {}
    seen: set[str] = set()
    dups: list[str] = []
    for d in dicts:
        dups += [k for k in d if k in seen]
        seen.update(d)
        merged.update(d)
    if dups:
        raise ValueError(f"{dups} appeared in multiple dictionaries; behavior of functional "
                         "call is ambiguous")
    return merged


def _untie(named: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The given values spread over every name tied to a given one (PyTorch's
    tie_weights=True)."""
    groups: dict[int, list[str]] = {}
    for name, t in named.items():
        groups.setdefault(id(t), []).append(name)
    out = dict(given)
    for names in groups.values():
        values = {id(given[n]): n for n in names if n in given}
        if len(values) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, "
                             "which are tied. Consider using tie_weights=False")
        if values:
            value = given[next(iter(values.values()))]
            out.update({n: value for n in names})
    return out


def _check_strict(module, named: dict[str, Any], given: dict[str, Any]) -> None:
    unexpected = sorted(k for k in given if k not in named)
    missing = sorted(k for k in named if k not in given)
    msgs = []
    if unexpected:
        msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if msgs:
        raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t"
                           + "\n\t".join(msgs))


def _swap(module, name: str, value: Any) -> tuple:
    """Put value under name; return what undoes it."""
    path, _, leaf = name.rpartition(".")
    owner = module.get_submodule(path)
    for kind in ("_parameters", "_buffers"):
        table = getattr(owner, kind)
        if leaf in table:
            old = table[leaf]
            table[leaf] = value
            return table, leaf, old
    old = owner.__dict__.get(leaf, _MISSING)
    owner.__dict__[leaf] = value  # a name the module does not have: an attribute meanwhile
    return owner.__dict__, leaf, old


def functional_call(module, parameter_and_buffer_dicts, args: Any = None,
                    kwargs: dict[str, Any] | None = None, *, tie_weights: bool = True,
                    strict: bool = False) -> Any:
    """module(*args, **kwargs) with its parameters and buffers replaced, for this call only,
    by the tensors given under their names (the module is left as it was)."""
    given = _merge(parameter_and_buffer_dicts)
    named = _all_named(module)
    if tie_weights:
        given = _untie(named, given)
    if strict:
        _check_strict(module, named, given)
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    undo = []
    try:
        for name, value in given.items():
            undo.append(_swap(module, name, value))
        return module(*args, **(kwargs or {}))
    finally:
        for table, leaf, old in reversed(undo):
            if old is _MISSING:
                del table[leaf]
            else:
                table[leaf] = old


def stack_module_state(models: Sequence) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The models' parameters and buffers stacked along a new first dimension, by name
    (for vmap over an ensemble of same-shaped models). Stacked parameters are new leaves
    that require grad; buffers do not."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if len({m.training for m in models}) > 1:
        raise RuntimeError("stack_module_state: Expected all models to have the same "
                           "training/eval mode.")
    if len({type(m) for m in models}) > 1:
        raise RuntimeError("stack_module_state: Expected all models to be of the same class, "
                           f"got: {[type(m).__name__ for m in models]}")

    def stacked(kind: str) -> dict[str, Tensor]:
        per_model = [dict(getattr(m, kind)()) for m in models]
        out = {}
        for name in per_model[0]:
            t = stack([p[name].detach() for p in per_model])
            out[name] = t.requires_grad_(True) if per_model[0][name].requires_grad else t
        return out

    return stacked("named_parameters"), stacked("named_buffers")
