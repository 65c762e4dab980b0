"""nn.functional's selu, celu, mish, hardswish, hardsigmoid, logsigmoid (catalog ops) and
softsign, tanhshrink (composites in PyTorch too: DivBackward0, SubBackward0). Re-exported
by nn.functional."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from .functional import _inplace, _op

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["celu", "hardsigmoid", "hardswish", "logsigmoid", "mish", "selu", "softsign",
           "tanhshrink"]


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("selu", input, torch_name="EluBackward0"), inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("celu", input, alpha=builtins.float(alpha)), inplace)


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
