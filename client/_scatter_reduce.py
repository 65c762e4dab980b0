"""scatter_reduce (sum, mean) and scatter's reduce='add', composed on the client from the
catalog's scatter_add and scatter (the catalog has no reducing scatter of its own).

scatter_reduce(self, dim, index, src, reduce, include_self=True):
  sum:  scatter_add(base, dim, index, src), base = self, or self with the positions that
        index names zeroed when include_self=False (scatter of 0). Each operand's
        gradient is then PyTorch's (self: g where kept, src: g gathered).
  mean: that sum divided by the number of values each position received (its own value
        counted when included, a position nothing reaches keeps self); integer dtypes
        divide rounding down, as PyTorch's kernel does. Gradients g / count, as there.
prod, amax and amin need rules of their own (a product's with zeros, an even split among
tied maxima) and a kernel: they raise NotImplementedError until the catalog has them.

scatter(dim, index, src or value, reduce='add') is scatter_add (a number value broadcast to
index's shape in self's dtype); PyTorch cannot differentiate it (grad_fn NotImplemented).
reduce='multiply' needs a multiplying scatter: NotImplementedError.
"""

from __future__ import annotations

import numbers
from typing import Any

from remotegrad.proto.catalog import FLOATING

from ._creation import full, ones_like
from ._tensor_base import TensorBase, apply
from ._warn import warn_user

_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
_UNSUPPORTED = ("prod", "amax", "amin", "max", "min")  # PyTorch takes max/min for amax/amin
_SRC_DEPRECATED = ("The reduce argument of torch.scatter with Tensor src is deprecated and "
                   "will be removed in a future PyTorch release. Use torch.scatter_reduce "
                   "instead for more reduction options.")


def _checked(x: TensorBase, index: TensorBase, src: TensorBase) -> None:
    """PyTorch's scatter checks, made first (the composition's ops would word them as
    their own, or promote a src of another dtype)."""
    if isinstance(index, TensorBase) and index.dtype.name not in ("int32", "int64"):
        raise RuntimeError("scatter(): Expected dtype int32/int64 for index")
    if isinstance(src, TensorBase) and src.dtype != x.dtype:
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")


def _scatter_add(base: TensorBase, dim: int, index: TensorBase, src: TensorBase,
                 torch_name: str | None = None) -> TensorBase:
    return apply("scatter_add", base, index, src, dim=dim, torch_name=torch_name)


def _zeroed(t: TensorBase, dim: int, index: TensorBase) -> TensorBase:
    """t with every position that index names set to 0."""
    return apply("scatter", t, index, dim=dim, value=0)


def scatter_reduce(input: TensorBase, dim: int, index: TensorBase, src: TensorBase,
                   reduce: str, *, include_self: bool = True) -> TensorBase:
    """torch.scatter_reduce / Tensor.scatter_reduce for reduce='sum' or 'mean'."""
    if not isinstance(src, TensorBase):
        raise TypeError("scatter_reduce(): argument 'src' (position 3) must be Tensor, not "
                        f"{type(src).__name__}")
    if not isinstance(reduce, str):
        raise TypeError("scatter_reduce(): argument 'reduce' must be str, not "
                        f"{type(reduce).__name__}")
    if reduce in _UNSUPPORTED:
        raise NotImplementedError(f"scatter_reduce: reduce='{reduce}' is not supported by "
                                  "remotegrad yet (it needs a catalog op of its own); 'sum' "
                                  "and 'mean' are")
    if reduce not in _REDUCTIONS:
        raise RuntimeError("reduce argument must be either sum, prod, mean, amax or amin, got "
                           f"{reduce}")
    _checked(input, index, src)
    base = input if include_self else _zeroed(input, dim, index)
    if reduce == "sum":
        return _scatter_add(base, dim, index, src, "ScatterReduceBackward0")
    total = _scatter_add(base, dim, index, src)
    counted = ones_like(input) if include_self else _zeroed(ones_like(input), dim, index)
    count = _scatter_add(counted, dim, index, ones_like(src)).detach()
    # a position nothing reaches and whose own value is left out keeps self: count 1
    count = apply("where", apply("eq", count, 0), 1, count)
    if input.dtype.name in FLOATING:
        return apply("div", total, count, torch_name="ScatterReduceBackward0")
    return apply("div", total, count, rounding_mode="floor", torch_name="ScatterReduceBackward0")


_warned: list[bool] = []


def _warn_once() -> None:
    if not _warned:  # PyTorch's TORCH_WARN_ONCE: once per process
        _warned.append(True)
        warn_user(_SRC_DEPRECATED)


def _bind_scatter(args: tuple, kwargs: dict) -> tuple[Any, ...]:
    names = ("input", "dim", "index", "src")
    if len(args) > len(names):
        raise TypeError(f"scatter() takes {len(names)} positional arguments but {len(args)} "
                        "were given")
    bound = dict(zip(names, args))
    for k, v in kwargs.items():
        if k in bound or k not in (*names, "value", "reduce"):
            raise TypeError(f"scatter() got an unexpected keyword argument '{k}'")
        bound[k] = v
    if "src" in bound and "value" in bound:
        raise TypeError("scatter() got multiple values for argument 'src'")
    for k in ("dim", "index"):
        if k not in bound:
            raise TypeError(f"scatter() missing required argument '{k}'")
    src = bound.get("src", bound.get("value"))
    return bound.get("input"), bound["dim"], bound["index"], src, bound["reduce"]


def scatter_with_reduce(args: tuple, kwargs: dict) -> TensorBase:
    """Tensor.scatter / torch.scatter / scatter_ with reduce= ('add'; see above)."""
    x, dim, index, src, reduce = _bind_scatter(args, kwargs)
    if isinstance(src, TensorBase):
        _warn_once()  # before any check, as PyTorch's
    if reduce not in ("add", "multiply"):
        raise RuntimeError("reduce argument must be either add or multiply.")
    if isinstance(src, TensorBase):
        _checked(x, index, src)
    elif isinstance(src, numbers.Number):
        _checked(x, index, None)
        src = full(tuple(index.shape), src, dtype=x.dtype)  # the number in self's dtype
    else:
        raise TypeError(f"scatter(): argument 'src' must be Tensor, not {type(src).__name__}")
    if reduce == "multiply":
        raise NotImplementedError("scatter: reduce='multiply' is not supported by remotegrad "
                                  "yet (it needs a catalog op of its own); reduce='add' is")
    return _scatter_add(x, dim, index, src, "NotImplemented")
