"""torch.result_type, promote_types and can_cast: PyTorch's type promotion, answered from
the catalog's own rules (no round trip)."""

from __future__ import annotations

import builtins
import numbers

from remotegrad.proto import catalog
from remotegrad.proto.catalog import FLOATING
from remotegrad.proto.catalog._types import promote_types as _promote
from remotegrad.proto.catalog._types import result_type as _result

from . import _dtypes
from ._tensor_base import TensorBase

_OVERLOADS = (" * (Tensor tensor, Tensor other)\n{m}"
              " * (Number scalar, Tensor tensor)\n{m}"
              " * (Tensor tensor, Number other)\n{m}"
              " * (Number scalar1, Number scalar2)\n{m}")


def _meta(x, got: str):
    if isinstance(x, TensorBase):
        return x._node.meta
    if isinstance(x, (builtins.bool, numbers.Number)) and not isinstance(x, complex):
        return catalog.scalar_meta(x)
    marks = "      didn't match because some of the arguments have invalid types: " \
            f"({got})\n"
    raise TypeError("result_type() received an invalid combination of arguments - got "
                    f"({got.replace('!', '')}), but expected one of:\n"
                    + _OVERLOADS.format(m=marks))


def _name(x) -> str:
    return "Tensor" if isinstance(x, TensorBase) else type(x).__name__


def result_type(tensor, other) -> _dtypes.dtype:
    """The dtype an arithmetic op over these operands would give."""
    got = ", ".join(f"!{_name(x)}!" for x in (tensor, other))
    return getattr(_dtypes, _result([_meta(tensor, got), _meta(other, got)]))


def promote_types(type1: _dtypes.dtype, type2: _dtypes.dtype) -> _dtypes.dtype:
    return getattr(_dtypes, _promote(type1.name, type2.name))


_KIND = {"bool": 0, **dict.fromkeys(("uint8", "int8", "int16", "int32", "int64"), 1),
         **dict.fromkeys(FLOATING, 2)}


def can_cast(from_: _dtypes.dtype, to: _dtypes.dtype) -> bool:
    """Whether PyTorch's same-kind rule allows the cast: never to a lower kind (float to
    integer, integer to bool)."""
    return _KIND[from_.name] <= _KIND[to.name]


FUNCTIONS = {"result_type": result_type, "promote_types": promote_types, "can_cast": can_cast}
