"""torch.set_default_dtype / set_default_tensor_type: the float that Python floats, integer
arithmetic that yields a float (int / int, sqrt(int), int + 1.5) and factories produce.

The catalog's rules are fixed to one default float (catalog.DEFAULT_FLOAT, float32), shared
by client, gateway and workers, so a graph means the same on every machine and in every
cache. A program's own default lives on the client only: factories read it directly
(_dtypes.get_default_dtype), and `apply` hands every op whose float32 result came from the
catalog's default (no float32 tensor among its inputs, no dtype attribute) to `resolve`
below, which casts the integer, bool or Python-float operands to the program's default
first. The graph that travels then names its dtypes explicitly: no worker needs to know the
client's default, and two programs with different defaults never share a cached result
they should not.
"""

from __future__ import annotations

import builtins
import warnings

from remotegrad.proto import catalog
from remotegrad.proto.catalog import FLOATING

from . import _dtypes, _tensor_base
from ._tensor_base import TensorBase, apply

_NOT_FLOAT = "only floating-point types are supported as the default type"
# PyTorch's legacy type names that name a CPU floating type
_TENSOR_TYPES = {"torch.FloatTensor": "float32", "torch.DoubleTensor": "float64",
                 "torch.HalfTensor": "float16"}


def set_default_dtype(d) -> None:
    """Make `d` (torch.float32, float64 or float16) the default floating dtype."""
    if not isinstance(d, _dtypes.dtype):
        raise TypeError(f"invalid dtype object: {_NOT_FLOAT}")
    if d.name not in FLOATING:
        raise TypeError(_NOT_FLOAT)
    _dtypes._default = d
    _tensor_base.default_float = None if d.name == catalog.DEFAULT_FLOAT else resolve


def get_default_dtype() -> _dtypes.dtype:
    return _dtypes.get_default_dtype()


_warned = False


def set_default_tensor_type(t) -> None:
    """The deprecated form: 'torch.FloatTensor' / 'torch.DoubleTensor' (a string; remotegrad
    has no legacy tensor-type classes), warned about once as PyTorch does."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please "
                      "use torch.set_default_dtype() and torch.set_default_device() as "
                      "alternatives.", UserWarning, stacklevel=2)
    if not isinstance(t, str):
        raise TypeError(f"invalid type object: {_NOT_FLOAT}")
    name = _TENSOR_TYPES.get(t)
    if name is None:
        if t.startswith("torch.") and t.endswith("Tensor"):
            raise TypeError(_NOT_FLOAT)
        raise TypeError(f"invalid type: '{t}'")
    set_default_dtype(_dtypes.from_name(name))


def resolve(op: str, operands: tuple, metas: tuple, attrs: dict) -> tuple | None:
    """The operands of `op` with those that take part in its type promotion cast to the
    default float, where its float32 result (`apply` asks only then) came from the
    catalog's default; None where it did not (a float32 input, or a dtype attribute)."""
    if attrs.get("dtype") is not None:
        return None
    if any(m.dtype == "float32" and not m.weak for m in metas):
        return None
    promote = catalog.get(op).promote
    which = promote if isinstance(promote, tuple) else range(len(operands))
    name = _dtypes.get_default_dtype().name
    out = list(operands)
    # Integer and bool tensors first: int + 1.5 is then (default) + 1.5, the number kept
    # weak and exact, as PyTorch computes it.
    cast = [i for i in which if isinstance(out[i], TensorBase) and not metas[i].weak
            and metas[i].dtype not in FLOATING]
    if not cast:  # only Python floats decide (where(mask, 0.1, 0.2)): they become 0-d
        cast = [i for i in which if isinstance(out[i], builtins.float)]
    if not cast:
        return None
    for i in cast:
        out[i] = apply("cast", out[i], dtype=name)
    return tuple(out)
