"""torch-style dtype objects (`remotegrad.float32`, ...) over the catalog's dtype names."""

from __future__ import annotations

import numpy as np
from remotegrad.proto.catalog import DEFAULT_FLOAT, FLOATING, ITEMSIZE


class dtype:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def is_floating_point(self) -> bool:
        return self.name in FLOATING

    @property
    def is_signed(self) -> bool:
        return self.name not in ("bool", "uint8")

    @property
    def is_complex(self) -> bool:
        return False

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


_BY_NAME = {n: dtype(n) for n in ITEMSIZE}
float32 = float = _BY_NAME["float32"]
float64 = double = _BY_NAME["float64"]
float16 = half = _BY_NAME["float16"]
int64 = long = _BY_NAME["int64"]
int32 = int = _BY_NAME["int32"]
int16 = short = _BY_NAME["int16"]
int8 = _BY_NAME["int8"]
uint8 = _BY_NAME["uint8"]
bool = _BY_NAME["bool"]

_default = _BY_NAME[DEFAULT_FLOAT]
NAMES = frozenset(_BY_NAME)


def from_name(name: str) -> dtype:
    return _BY_NAME[name]


def resolve(d) -> str | None:
    """A dtype argument (a dtype, a numpy dtype, a Python type or None) → catalog name."""
    if d is None:
        return None
    if isinstance(d, dtype):
        return d.name
    import builtins
    if d is builtins.float:
        return _default.name
    if d is builtins.int:
        return "int64"
    if d is builtins.bool:
        return "bool"
    name = np.dtype(d).name
    if name not in _BY_NAME:
        raise TypeError(f"dtype {d!r} is not supported")
    return name


def get_default_dtype() -> dtype:
    return _default
