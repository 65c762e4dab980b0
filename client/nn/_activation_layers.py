"""nn.SELU, CELU, Mish, Hardswish, Hardsigmoid, LogSigmoid, Softsign, Tanhshrink: modules
over nn.functional's, with PyTorch's reprs (Hardswish and Hardsigmoid show no inplace)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import functional as F  # noqa: N812
from ._layers import _Activation
from ._module import Module

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["CELU", "Hardsigmoid", "Hardswish", "LogSigmoid", "Mish", "SELU", "Softsign",
           "Tanhshrink"]


class SELU(_Activation):
    fn = staticmethod(F.selu)


class Mish(_Activation):
    fn = staticmethod(F.mish)


class Hardswish(_Activation):
    fn = staticmethod(F.hardswish)

    def extra_repr(self) -> str:
        return ""


class Hardsigmoid(_Activation):
    fn = staticmethod(F.hardsigmoid)

    def extra_repr(self) -> str:
        return ""


class CELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class LogSigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class Softsign(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.softsign(input)


class Tanhshrink(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanhshrink(input)
