"""Binding and recording PyTorch-style calls through the op table (_op_table.ROWS: one
row per catalog op, with its PyTorch names, grad_fn name and saved tensors); the Tensor
methods, in-place methods and module functions are generated from it.

The methods are written out in _tensor_methods.py, generated from the table by
scripts/gen_tensor_methods.py (tests/unit/test_tensor_methods_fresh.py checks it is fresh);
each calls `call` with its PyTorch name (an in-place one assigns the result to self). An
entry whose op the catalog does not have (yet) gets no method or function.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from remotegrad.proto import catalog

from . import _clamp as _clamp_tensors
from . import _arg_check, _dtypes, _scatter_reduce
from ._op_table import TABLE, Spec, grad_name, internal
from ._tensor_base import TensorBase, apply

if TYPE_CHECKING:
    from ._tensor import Tensor

__all__ = ["TABLE", "Spec", "available", "bind", "call", "functions", "grad_name",
           "internal", "plain_call"]


def _attr(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, _dtypes.dtype):
        return value.name
    if isinstance(value, TensorBase) and value.numel() == 1 and not value.requires_grad:
        return value.item()
    if isinstance(value, np.generic):  # numpy's scalars are Python numbers to PyTorch
        return value.item()
    return value


def bind(name: str, spec: Spec, args: tuple, kwargs: dict) -> tuple[list, dict]:
    """PyTorch-style (args, kwargs) → (operands, catalog attributes)."""
    opdef = catalog.get(spec.op)
    nin = spec.nin if spec.nin is not None else opdef.nin
    if name in _arg_check.CHECKED:
        _arg_check.check_method(name, spec.inputs, nin, args, kwargs)
    if not kwargs and len(args) == nin:  # inputs alone (x * 2, x.sin(), x ** 2, x.sum())
        if spec.adapt is None:
            return list(args), {}  # what the rest gives them
        operands, kw = spec.adapt(list(args), {})
        if not kw:  # the adapter checked them and added no attribute: nothing left to do
            return operands, {}
        return _finish(name, opdef, operands, kw)
    operands = list(args[:nin])
    rest = args[nin:]
    kw = dict(kwargs)
    if "axis" in kw and "dim" in spec.params:  # PyTorch's NumPy-style alias
        kw["dim"] = kw.pop("axis")
    for key in spec.inputs[len(operands):nin]:
        if key not in kw:
            raise TypeError(f"{name}() missing required argument '{key}'")
        operands.append(kw.pop(key))
    if len(rest) > len(spec.params):
        most = nin + len(spec.params)  # PyTorch's grammar: "1 positional argument"
        raise TypeError(f"{name}() takes {most} positional argument{'s' if most > 1 else ''} "
                        f"but {len(args)} were given")
    for key, value in zip(spec.params, rest):
        if key in kw:
            raise TypeError(f"{name}() got multiple values for argument '{key}'")
        kw[key] = value
    if spec.adapt is not None:
        operands, kw = spec.adapt(operands, kw)
    return _finish(name, opdef, operands, kw)


def _finish(name: str, opdef, operands: list, kw: dict) -> tuple[list, dict]:
    """bind's last part: the adapted keywords as catalog attributes."""
    dtype = kw.pop("dtype", None)
    if dtype is not None and "dtype" not in opdef.attrs:
        operands[0] = operands[0].to(dtype)
    if kw.pop("out", None) is not None:
        raise TypeError(f"{name}(): out= is not supported by remotegrad (tensors are immutable "
                        "graph values); assign the result instead")
    unknown = set(kw) - set(opdef.attrs)
    if unknown:
        raise TypeError(f"{name}() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    return operands, {k: _attr(v) for k, v in kw.items() if not (v is None and k in
                                                              _OPTIONAL_NONE)}


_OPTIONAL_NONE = frozenset({"dim", "correction", "min", "max", "rounding_mode"})


def call(name: str, args: tuple, kwargs: dict) -> Tensor:
    if not kwargs:  # x * 2, x.sin(): the op over its inputs, as bind would give them
        plain = _PLAIN.get(name)
        if plain is None:
            plain = plain_call(name)
        if plain and len(args) == plain[1]:
            return apply(plain[0], *args, torch_name=plain[2])
    spec = TABLE[name]
    if spec.op == "clamp" and _clamp_tensors.tensor_bounds(args, kwargs):
        return _clamp_tensors.clamp(name, args, kwargs)  # composed: the op takes numbers
    if spec.op == "scatter" and kwargs.get("reduce") is not None:
        return _scatter_reduce.scatter_with_reduce(args, kwargs)  # composed: scatter_add
    operands, attrs = bind(name, spec, args, kwargs)
    grad = spec.grad(operands, attrs) if callable(spec.grad) else spec.grad
    return apply(spec.op, *operands, torch_name=grad, **attrs)


# name -> (catalog op, its tensor inputs, grad_fn name) where a call with exactly its
# inputs and no keywords records the op as it is (no adapter, no grad_fn namer, not one
# of call's composed cases), or () where it does not: ~0.6 us an op less than binding.
_PLAIN: dict[str, tuple] = {}


def plain_call(name: str) -> tuple:
    """`name`'s (op, inputs, grad_fn name) where a call with exactly its inputs and no
    keywords records the op as it is, or () (see _PLAIN)."""
    plain = _PLAIN.get(name)
    if plain is None:
        plain = _PLAIN[name] = _plain(name)
    return plain


def _plain(name: str) -> tuple:
    spec = TABLE[name]
    if (spec.adapt is not None or callable(spec.grad) or spec.op in ("clamp", "scatter")
            or name in _arg_check.CHECKED):
        return ()
    nin = spec.nin if spec.nin is not None else catalog.get(spec.op).nin
    return (spec.op, nin, spec.grad) if nin >= 0 else ()


# In-place forms of these may change self's shape (x.squeeze_()).
RESHAPING = frozenset({"squeeze", "unsqueeze", "transpose", "t"})


def _function(name: str):
    def function(*args, **kwargs):
        return call(name, args, kwargs)
    function.__name__ = function.__qualname__ = name
    return function


def functions() -> dict[str, Callable[..., Any]]:
    """The `remotegrad.<name>` function of every available entry with an `f` form."""
    return {name: _function(name) for name, spec in TABLE.items()
            if spec.op in catalog.CATALOG and "f" in spec.forms}


def available(name: str) -> builtins.bool:
    spec = TABLE.get(name)
    return spec is not None and spec.op in catalog.CATALOG
