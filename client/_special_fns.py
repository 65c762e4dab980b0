"""torch.polygamma (n first, unlike its Tensor method), torch.var_mean and torch.std_mean.

var_mean/std_mean are the two reductions recorded side by side, each named as PyTorch names
its one node (VarMeanBackward0, StdMeanBackward0): PyTorch's tuple shares a single grad_fn,
here each tensor has its own of that name, with the same values and gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remotegrad.proto.catalog import FLOATING

from . import _ops
from ._arg_check import _invalid
from ._tensor_base import apply

if TYPE_CHECKING:
    from ._tensor import Tensor


def polygamma(n: int, input: Tensor) -> Tensor:
    """torch.polygamma(n, input), with PyTorch's parser's refusals (an int n, a tensor)."""
    if not isinstance(n, int):
        raise TypeError("polygamma(): argument 'n' (position 1) must be int, not "
                        f"{type(n).__name__}")
    if not hasattr(input, "_node"):
        raise TypeError("polygamma(): argument 'input' (position 2) must be Tensor, not "
                        f"{type(input).__name__}")
    return _ops.call("polygamma", (input, n), {})


def _recorded(name: str, input: Tensor, args: tuple, kwargs: dict, torch_name: str) -> Tensor:
    operands, attrs = _ops.bind(name, _ops.TABLE[name], (input, *args), kwargs)
    return apply(name, *operands, torch_name=torch_name, **attrs)


_PARAMS = ("input", "dim", "unbiased", "keepdim")


def _parse(name: str, args: tuple, kwargs: dict) -> tuple:
    """(input, dim, unbiased, keepdim, correction) of PyTorch's overloads: (input, dim,
    unbiased, keepdim), (input, dim, *, correction, keepdim) and the old (input, unbiased);
    its "invalid combination" for another (both unbiased and correction, a non-bool
    unbiased or keepdim, the old form with more)."""
    bound = dict(zip(_PARAMS, args))
    old = len(args) > 1 and isinstance(args[1], bool)  # (input, bool unbiased)
    bad = len(args) > len(_PARAMS) or any(
        k in bound or k not in (*_PARAMS, "correction") for k in kwargs)
    bound.update(kwargs)
    if old:
        bad = bad or len(args) > 2 or set(bound) != {"input", "dim"}
        bound["dim"], bound["unbiased"] = None, args[1]
    unbiased, keepdim = bound.get("unbiased"), bound.get("keepdim", False)
    bad = (bad or (unbiased is not None and (not isinstance(unbiased, bool)
                                             or bound.get("correction") is not None))
           or not isinstance(keepdim, bool) or not _dims(bound.get("dim")))
    if bad:
        raise _invalid(name, args, kwargs, "")
    if "input" not in bound:
        raise TypeError(f'{name}() missing 1 required positional arguments: "input"')
    return (bound["input"], bound.get("dim"), unbiased, keepdim, bound.get("correction"))


def _dims(dim) -> bool:
    """Whether `dim` is what the parser takes for `int[1]? dim` (a bool is no int there)."""
    if isinstance(dim, (tuple, list)):
        return all(isinstance(d, int) and not isinstance(d, bool) for d in dim)
    return dim is None or (isinstance(dim, int) and not isinstance(dim, bool))


def _pair(stat: str, torch_name: str, args: tuple, kwargs: dict) -> tuple[Tensor, Tensor]:
    input, dim, unbiased, keepdim, correction = _parse(f"{stat}_mean", args, kwargs)
    if input.dtype.name not in FLOATING:
        raise RuntimeError(f"{stat}_mean only support floating point and complex dtypes")
    kw = {"dim": dim, "keepdim": keepdim}
    if unbiased is not None:
        kw["unbiased"] = unbiased
    if correction is not None:
        kw["correction"] = correction
    spread = _recorded(stat, input, (), kw, torch_name)
    mean = _recorded("mean", input, (), {"dim": dim, "keepdim": keepdim}, torch_name)
    return spread, mean


def var_mean(*args, **kwargs) -> tuple[Tensor, Tensor]:
    """(variance, mean) over dim, as torch.var_mean(input, dim=None, unbiased=None,
    keepdim=False, *, correction=None)."""
    return _pair("var", "VarMeanBackward0", args, kwargs)


def std_mean(*args, **kwargs) -> tuple[Tensor, Tensor]:
    """(standard deviation, mean) over dim, as torch.std_mean (var_mean's arguments)."""
    return _pair("std", "StdMeanBackward0", args, kwargs)


FUNCTIONS = {"polygamma": polygamma, "var_mean": var_mean, "std_mean": std_mean}
