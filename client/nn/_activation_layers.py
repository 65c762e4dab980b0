"""nn.SELU, CELU, Mish, Hardswish, Hardsigmoid, LogSigmoid, Softsign, Tanhshrink, ELU,
ReLU6, Softplus: modules over nn.functional's, with PyTorch's reprs (Hardswish and
Hardsigmoid show no inplace)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import functional as F  # noqa: N812
from ._layers import _Activation
from ._module import Module

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["CELU", "ELU", "Hardsigmoid", "Hardswish", "LogSigmoid", "Mish", "ReLU6", "SELU",
           "Softplus", "Softsign", "Tanhshrink"]


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


class ReLU6(_Activation):
    fn = staticmethod(F.relu6)


class _Alpha(Module):
    """ELU and CELU: alpha and inplace."""

    fn = None

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return type(self).fn(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(_Alpha):
    fn = staticmethod(F.celu)


class ELU(_Alpha):
    fn = staticmethod(F.elu)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class LogSigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class Softsign(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.softsign(input)


class Tanhshrink(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanhshrink(input)
