"""The op catalog: one declarative OpDef per op (see _registry.OpDef)."""

from . import elementwise, reductions, structural  # noqa: F401  (registration)
from ._registry import CATALOG, REQUIRED, OpDef, get, register
from ._types import (
                     DEFAULT_FLOAT,
                     DTYPES,
                     FLOATING,
                     INTEGRAL,
                     ITEMSIZE,
                     Meta,
                     OpError,
                     broadcast_shapes,
                     promote_types,
                     result_type,
                     scalar_meta,
)

__all__ = [
                     "CATALOG",
                     "DEFAULT_FLOAT",
                     "DTYPES",
                     "FLOATING",
                     "INTEGRAL",
                     "ITEMSIZE",
                     "REQUIRED",
                     "Meta",
                     "OpDef",
                     "OpError",
                     "broadcast_shapes",
                     "get",
                     "promote_types",
                     "register",
                     "result_type",
                     "scalar_meta",
]
