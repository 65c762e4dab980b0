"""allclose, isclose, equal: comparisons PyTorch tests and scripts use (a round trip each
for the Python-bool forms)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._tensor import Tensor


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:
    close = (input - other).abs() <= atol + rtol * other.abs()
    close = close.logical_or(input == other)  # infinities of the same sign
    if equal_nan:
        close = close.logical_or(input.isnan().logical_and(other.isnan()))
    return close


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def equal(input: Tensor, other: Tensor) -> bool:
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool((input == other).all())


class CompareMethods:
    """These comparisons as Tensor methods (the same functions as remotegrad.<name>)."""

    __slots__ = ()
    allclose = allclose
    isclose = isclose
    equal = equal
