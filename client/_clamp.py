"""clamp / clip with tensor bounds (PyTorch's clamp.Tensor overload, ClampBackward0),
composed from catalog ops on the client: the catalog's clamp takes numbers only.

The bounds broadcast with the input (the result may be larger than it) and the three are
promoted to one dtype. The value is minimum(maximum(x, min), max), NaN from any operand
kept. Its gradients are PyTorch's (clamp_backward and clamp_backward_min_max), which
differ from maximum/minimum's at ties (those share the gradient): x gets it where
min <= x <= max, min where x < min < max, max where x > max or max < min; nowhere, at
x < min == max. The result is a `where` over these masks, so each operand's gradient is
where's own rule (mask·g, reduced to its shape), differentiable again:
    where(mx, x, where(ml, min, where(mh, max + nan, V)))
with V the value detached (what the masks leave: no gradient) and `nan` V's NaN where V is
NaN, else -0.0, so that the max branch has the value's NaN (max + -0.0 is max exactly,
signed zeros included) while max still gets its gradient, as in PyTorch.
"""

from __future__ import annotations

import numbers
from typing import Any

from remotegrad.proto.catalog import FLOATING
from remotegrad.proto.catalog._types import result_type

from ._tensor_base import TensorBase, apply
from ._to import invalid_arguments

_OVERLOADS = (" * (Tensor input, Tensor min = None, Tensor max = None, *, Tensor out = None)\n"
              " * (Tensor input, Number min = None, Number max = None, *, Tensor out = None)\n")


def tensor_bounds(args: tuple, kwargs: dict) -> bool:
    """Whether a clamp call gives a bound as a tensor (the composed form)."""
    return any(isinstance(a, TensorBase) for a in args[1:]) or any(
        isinstance(kwargs.get(k), TensorBase) for k in ("min", "max"))


def _invalid(name: str, args: tuple, kwargs: dict) -> TypeError:
    return invalid_arguments(name, args, kwargs, _OVERLOADS)


def _bind(name: str, args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    if len(args) > 3 or set(kwargs) - {"min", "max", "out"}:
        raise _invalid(name, args, kwargs)
    bound = dict(zip(("input", "min", "max"), args))
    for k, v in kwargs.items():
        if k in bound:
            raise _invalid(name, args, kwargs)
        bound[k] = v
    if bound.get("out") is not None:
        raise TypeError(f"{name}(): out= is not supported by remotegrad (tensors are "
                        "immutable graph values); assign the result instead")
    x, lo, hi = bound.get("input"), bound.get("min"), bound.get("max")
    if not all(v is None or isinstance(v, TensorBase) for v in (x, lo, hi)):
        raise _invalid(name, args, kwargs)  # a number next to a tensor bound
    return x, lo, hi


def clamp(name: str, args: tuple, kwargs: dict, torch_name: str = "ClampBackward0"
          ) -> TensorBase:
    """torch.clamp(input, min, max) / Tensor.clamp with at least one tensor bound."""
    x, lo, hi = _bind(name, args, kwargs)
    return _clamped(x, lo, hi, torch_name)


def _clamped(x, lo, hi, torch_name: str) -> TensorBase:
    given = [t for t in (x, lo, hi) if t is not None]
    dtype = result_type([t._node.meta for t in given])
    x, lo, hi = (None if t is None else t if t.dtype.name == dtype else
                 apply("cast", t, dtype=dtype) for t in (x, lo, hi))
    value = x
    if lo is not None:
        value = apply("maximum", value, lo)
    if hi is not None:
        value = apply("minimum", value, hi)
    value = value.detach()
    if hi is None:
        return _pick(apply("ge", x, lo), x, apply("lt", x, lo), lo, value, torch_name)
    if lo is None:
        return _pick(apply("le", x, hi), x, apply("gt", x, hi), hi, value, torch_name)
    inside = apply("logical_and", apply("ge", x, lo), apply("le", x, hi))
    below = apply("logical_and", apply("lt", x, lo), apply("lt", lo, hi))
    above = apply("logical_or", apply("gt", x, hi), apply("lt", hi, lo))
    if dtype in FLOATING:  # only the max branch can meet a NaN of the value (see above)
        hi = apply("add", hi, apply("where", apply("isnan", value), value, -0.0))
    rest = apply("where", above, hi, value)
    return apply("where", inside, x, apply("where", below, lo, rest), torch_name=torch_name)


def _pick(keep, x, bound_mask, bound, value, torch_name: str) -> TensorBase:
    return apply("where", keep, x, apply("where", bound_mask, bound, value),
                 torch_name=torch_name)


def _one_bound(name: str, which: str, input, bound) -> TensorBase:
    """clamp_min / clamp_max: the catalog's clamp for a number (Backward0), the composed
    form for a tensor (Backward1), as PyTorch names them."""
    stem = "ClampMin" if which == "min" else "ClampMax"
    if isinstance(bound, TensorBase):
        lo, hi = (bound, None) if which == "min" else (None, bound)
        return _clamped(input, lo, hi, f"{stem}Backward1")
    if isinstance(bound, numbers.Number) and not isinstance(bound, complex):
        value = bound.item() if hasattr(bound, "item") else bound  # numpy's scalars
        return apply("clamp", input, torch_name=f"{stem}Backward0", **{which: value})
    raise TypeError(f"{name}() received an invalid combination of arguments - got (Tensor, "
                    f"{type(bound).__name__}), but expected one of:\n"
                    f" * (Tensor input, Tensor {which}, *, Tensor out = None)\n"
                    f" * (Tensor input, Number {which}, *, Tensor out = None)\n")


def clamp_min(input: TensorBase, min) -> TensorBase:
    return _one_bound("clamp_min", "min", input, min)


def clamp_max(input: TensorBase, max) -> TensorBase:
    return _one_bound("clamp_max", "max", input, max)
