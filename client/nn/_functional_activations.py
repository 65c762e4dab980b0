"""nn.functional's selu, celu, mish, hardswish, hardsigmoid, logsigmoid (catalog ops) and
softsign, tanhshrink (composites in PyTorch too: DivBackward0, SubBackward0). Re-exported
by nn.functional (which this module does not import: no circle)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from .._tensor import apply

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["celu", "hardsigmoid", "hardswish", "logsigmoid", "mish", "selu", "softsign",
           "tanhshrink"]


def _op(name: str, input: Tensor, torch_name: str | None = None, **attrs) -> Tensor:
    return apply(name, input, torch_name=torch_name, **attrs)


def _inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    """nn.functional's inplace=True: input takes the value (its in-place checks first)."""
    if not inplace:
        return out
    input._check_inplace()
    return input._assign(out)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    # PyTorch's in-place forms have derivatives of their own (of the result): ...Backward1
    return _inplace(input, _op("selu", input, torch_name="EluBackward1" if inplace
                               else "EluBackward0"), inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("celu", input, alpha=builtins.float(alpha),
                               torch_name="CeluBackward1" if inplace else None), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("mish", input), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("hardswish", input), inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("hardsigmoid", input), inplace)


def logsigmoid(input: Tensor) -> Tensor:
    return _op("logsigmoid", input, torch_name="LogSigmoidBackward0")


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()
