"""torch.polygamma (n first, unlike its Tensor method), torch.var_mean and torch.std_mean.

var_mean/std_mean are the two reductions recorded side by side, each named as PyTorch names
its one node (VarMeanBackward0, StdMeanBackward0): PyTorch's tuple shares a single grad_fn,
here each tensor has its own of that name, with the same values and gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remotegrad.proto.catalog import FLOATING

from . import _ops
from ._tensor_base import apply

if TYPE_CHECKING:
    from ._tensor import Tensor


def polygamma(n: int, input: Tensor) -> Tensor:
    return _ops.call("polygamma", (input, n), {})


def _recorded(name: str, input: Tensor, args: tuple, kwargs: dict, torch_name: str) -> Tensor:
    operands, attrs = _ops.bind(name, _ops.TABLE[name], (input, *args), kwargs)
    return apply(name, *operands, torch_name=torch_name, **attrs)


def _pair(stat: str, torch_name: str, input: Tensor, dim, unbiased, keepdim: bool,
          correction) -> tuple[Tensor, Tensor]:
    if input.dtype.name not in FLOATING:
        raise RuntimeError(f"{stat}_mean only support floating point and complex dtypes")
    if isinstance(dim, bool) and unbiased is None:  # var_mean(x, True): the old signature
        dim, unbiased = None, dim
    kw = {"dim": dim, "keepdim": keepdim}
    if unbiased is not None:
        kw["unbiased"] = unbiased
    if correction is not None:
        kw["correction"] = correction
    spread = _recorded(stat, input, (), kw, torch_name)
    mean = _recorded("mean", input, (), {"dim": dim, "keepdim": keepdim}, torch_name)
    return spread, mean


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,
             correction=None) -> tuple[Tensor, Tensor]:
    """(variance, mean) over dim, as torch.var_mean."""
    return _pair("var", "VarMeanBackward0", input, dim, unbiased, keepdim, correction)


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,
             correction=None) -> tuple[Tensor, Tensor]:
    """(standard deviation, mean) over dim, as torch.std_mean."""
    return _pair("std", "StdMeanBackward0", input, dim, unbiased, keepdim, correction)


FUNCTIONS = {"polygamma": polygamma, "var_mean": var_mean, "std_mean": std_mean}
