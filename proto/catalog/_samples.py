"""Shorthands for OpInfo-style sample inputs (see _registry.In and Sample)."""

from __future__ import annotations

from ._registry import In, Sample


def F(*shape: int, low: float = -2.0, high: float = 2.0) -> In:
    """A float input (the dtype under test) with values in [low, high)."""
    return In(tuple(shape), "float", low, high)


def P(*shape: int) -> In:
    """A positive float input, away from 0 (for log, sqrt, division)."""
    return In(tuple(shape), "float", 0.5, 2.0)


def I(shape: tuple[int, ...], high: int, low: int = 0) -> In:  # noqa: E743
    """An int64 input in [low, high): class indices, gather/embedding indices."""
    return In(tuple(shape), "int", low, high)


def B(*shape: int) -> In:
    """A random bool input."""
    return In(tuple(shape), "bool")


def V(value, kind: str = "value") -> In:
    """A fixed value (nested list); its dtype is numpy's for that list."""
    return In((), kind, value=value)


def C(value: float | int | bool) -> In:
    """A Python number operand: a weakly typed `const` node."""
    return In((), "scalar", value=value)


def S(*inputs: In, grad=None, fd: bool = True, second: bool = True, **attrs) -> Sample:
    return Sample(tuple(inputs), attrs, grad, fd, second)


# Standard sample sets: 0-d, ordinary, size-0, size-1 broadcasting, 3-D.
def unary(make=F) -> tuple[Sample, ...]:
    return (S(make()), S(make(3, 4)), S(make(0, 3)), S(make(2, 1, 3)))


def binary(left=F, right=F) -> tuple[Sample, ...]:
    return (S(left(3, 4), right(3, 4)), S(left(3, 1), right(1, 4)),
            S(left(), right(2, 3)), S(left(0, 3), right(3)), S(left(2, 1, 3), right(4, 1)))
