"""torch.special: the aliases of ops the client has (expit is sigmoid, gammaln lgamma, psi
digamma, ...), with PyTorch's grad_fn names (those of the ops) and its argument errors,
which name the function special_<name>. The functions of torch.special without an op
here (i0, entr, xlogy, ndtr, zeta, the Bessel and polynomial families...) are absent."""

from __future__ import annotations

from typing import Any

from ._arg_check import missing
from ._functional import FUNCTIONS

# torch.special name -> (remotegrad function, PyTorch's positional parameters after input,
# those of them it requires)
_ALIASES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "erf": ("erf", (), ()), "erfc": ("erfc", (), ()), "erfinv": ("erfinv", (), ()),
    "expit": ("sigmoid", (), ()), "logit": ("logit", ("eps",), ()),
    "gammaln": ("lgamma", (), ()), "digamma": ("digamma", (), ()), "psi": ("digamma", (), ()),
    "sinc": ("sinc", (), ()), "log1p": ("log1p", (), ()), "expm1": ("expm1", (), ()),
    "exp2": ("exp2", (), ()), "logsumexp": ("logsumexp", ("dim", "keepdim"), ("dim",)),
    "softmax": ("softmax", ("dim", "dtype"), ("dim",)),  # (log_softmax's dtype: keyword)
    "log_softmax": ("log_softmax", ("dim",), ("dim",)),
}


def _check(name: str, args: tuple, kwargs: dict, params: tuple, required: tuple,
           position: int = 1) -> None:
    full = f"special_{name}"
    most = 1 + len(params)
    if len(args) > most:
        plural = "s" if most > 1 else ""
        raise TypeError(f"{full}() takes {most} positional argument{plural} but {len(args)} "
                        "were given")
    if not args and "input" not in kwargs:
        raise TypeError(f'{full}() missing 1 required positional arguments: "input"')
    x = args[0] if args else kwargs["input"]
    if not hasattr(x, "_node"):
        raise TypeError(f"{full}(): argument 'input' (position {position}) must be Tensor, not "
                        f"{type(x).__name__}")
    missing(full, required, args[1:], kwargs, args)


def _alias(name: str, target: str, params: tuple, required: tuple):
    def function(*args, **kwargs):
        _check(name, args, kwargs, params, required)
        return FUNCTIONS[target](*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"torch.special.{name}: remotegrad.{target}."
    return function


def polygamma(n: int, input) -> Any:
    """torch.special.polygamma(n, input)."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("special_polygamma(): argument 'n' (position 1) must be int, not "
                        f"{type(n).__name__}")
    _check("polygamma", (input,), {}, (), (), position=2)
    return input.polygamma(n)


def round(*args, **kwargs) -> Any:  # noqa: A001 (PyTorch's name)
    """torch.special.round(input, *, decimals=0): round with decimals (RoundBackward1),
    with PyTorch's special_round errors."""
    _check("round", args, kwargs, (), ())
    for key in kwargs:
        if key not in ("input", "decimals"):
            raise TypeError(f"special_round() got an unexpected keyword argument '{key}'")
    decimals = kwargs.get("decimals", 0)
    if not isinstance(decimals, int):
        raise TypeError("special_round(): argument 'decimals' must be int, not "
                        f"{type(decimals).__name__}")
    return (args[0] if args else kwargs["input"]).round(decimals=decimals)


globals().update({name: _alias(name, *spec) for name, spec in _ALIASES.items()})
__all__ = [*_ALIASES, "polygamma", "round"]
