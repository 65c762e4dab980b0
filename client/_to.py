"""Tensor.to's argument parsing, as PyTorch's overloads read it.

PyTorch has three overloads, tried in order:
    to(device=None, dtype=None, non_blocking=False, copy=False, *, memory_format=None)
    to(dtype, non_blocking=False, copy=False, *, memory_format=None)
    to(tensor, non_blocking=False, copy=False, *, memory_format=None)
A string is always a device there: `x.to('float64')` is not a cast but a device string
PyTorch's parser refuses ("Invalid device string: 'float64'"), and a string given as
dtype= matches no overload (TypeError). Arguments that match none get PyTorch's TypeError,
listing what was passed and the overloads. A device is checked as PyTorch's CPU-only build
checks it (cuda: AssertionError, other known types: not linked); the CPU is the only one a
remotegrad tensor can be on (where its arithmetic runs is the cluster's choice). 'meta' is
accepted and keeps the data (remotegrad has no tensors without data)."""

from __future__ import annotations

import builtins
import re
from typing import Any

from . import _dtypes
from ._default_device import _KNOWN
from ._size import device as _device
from ._tensor_meta import _TORCH_TYPE, TensorMeta

_OVERLOADS = (
    " * (torch.device device = None, torch.dtype dtype = None, bool non_blocking = False, "
    "bool copy = False, *, torch.memory_format memory_format = None)\n"
    " * (torch.dtype dtype, bool non_blocking = False, bool copy = False, *, "
    "torch.memory_format memory_format = None)\n"
    " * (Tensor tensor, bool non_blocking = False, bool copy = False, *, "
    "torch.memory_format memory_format = None)\n")

# PyTorch's device-string grammar: a type, then optionally ':' and an index without a
# leading zero.
_DEVICE = re.compile(r"([a-zA-Z_]+)(?::([1-9]\d*|0))?")
_NOT_COMPILED = {"cuda": "CUDA", "xpu": "XPU"}
_PY_TYPES = {builtins.float: "float64", builtins.int: "int64", builtins.bool: "bool"}


def _type_name(value: Any) -> str:
    if isinstance(value, TensorMeta):
        return "Tensor"
    if isinstance(value, _dtypes.dtype):
        return "torch.dtype"
    if isinstance(value, _device):
        return "torch.device"
    return type(value).__name__


def invalid_arguments(name: str, args: tuple, kwargs: dict, overloads: str) -> TypeError:
    """PyTorch's TypeError for a call of `name` that matches none of its overloads."""
    got = ", ".join(_type_name(a) for a in args)
    # PyTorch lists the keywords last-given first, each followed by ", " when no
    # positional argument came before them.
    keys = [f"{k}={_type_name(v)}" for k, v in reversed(kwargs.items())]
    if keys:
        got = f"{got}, {', '.join(keys)}" if args else "".join(f"{k}, " for k in keys)
    return TypeError(f"{name}() received an invalid combination of arguments - got ({got}), "
                     f"but expected one of:\n{overloads}")


def _is_device(value: Any) -> bool:
    return value is None or isinstance(value, (str, _device)) or (
        isinstance(value, builtins.int) and not isinstance(value, builtins.bool))


def _is_dtype(value: Any) -> bool:
    return isinstance(value, _dtypes.dtype) or any(value is t for t in _PY_TYPES)


def _dtype_name(value: Any) -> str | None:
    if value is None:
        return None
    return next((n for t, n in _PY_TYPES.items() if value is t), None) or _dtypes.resolve(value)


def check_device(spec: Any) -> bool:
    """Refuse a device other than the CPU as PyTorch's CPU-only build does; whether the
    device names an index ('cpu:0': PyTorch then copies, the tensor's device having none)."""
    if spec is None:
        return False
    if isinstance(spec, builtins.int):
        raise RuntimeError("Device index must not be negative" if spec < 0 else
                           "Cannot access accelerator device when none is available.")
    if isinstance(spec, _device) and ":" not in spec.type:
        kind, indexed = spec.type, spec.index is not None
    elif isinstance(spec, _device):  # remotegrad.device('cpu:0') keeps the string whole
        kind, indexed = _parse(spec.type), True
    else:
        kind, indexed = _parse(spec), ":" in spec
    if kind in ("cpu", "meta"):  # no meta tensors here: the data stays (a skeleton
        return indexed             # module, .to('meta'), is filled by functional_call)
    if kind in _NOT_COMPILED:
        raise AssertionError(f"Torch not compiled with {_NOT_COMPILED[kind]} enabled")
    raise RuntimeError(f"PyTorch is not linked with support for {kind} devices")


def _parse(spec: str) -> str:
    if not spec:
        raise RuntimeError("Device string must not be empty")
    m = _DEVICE.fullmatch(spec)
    if m is None:
        raise RuntimeError(f"Invalid device string: '{spec}'")
    if m.group(1) not in _KNOWN:
        raise RuntimeError(f"Expected one of {', '.join(_KNOWN)} device type at start of "
                           f"device string: {spec}")
    return m.group(1)


_FLAGS = ("non_blocking", "copy")


def _bind(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict | None:
    """The overload's parameters bound to the call, or None when the call does not fit."""
    if len(args) > len(names) or set(kwargs) - set(names) - {"memory_format"}:
        return None
    bound = dict(zip(names, args))
    for k, v in kwargs.items():
        if k in bound:
            return None
        bound[k] = v
    if any(not isinstance(bound.get(f, False), builtins.bool) for f in _FLAGS):
        return None
    return bound


def parse(self_meta_dtype: str, args: tuple, kwargs: dict) -> tuple[str, bool]:
    """(target dtype name, copy) for Tensor.to(*args, **kwargs) on a tensor of the given
    dtype; raises PyTorch's errors."""
    b = _bind(("device", "dtype", *_FLAGS), args, kwargs)
    if b is not None and _is_device(b.get("device")) and (
            b.get("dtype") is None or _is_dtype(b["dtype"])):
        indexed = check_device(b.get("device"))
        return _dtype_name(b.get("dtype")) or self_meta_dtype, b.get("copy", False) or indexed
    b = _bind(("dtype", *_FLAGS), args, kwargs)
    if b is not None and _is_dtype(b.get("dtype")):
        return _dtype_name(b["dtype"]), b.get("copy", False)
    b = _bind(("tensor", *_FLAGS), args, kwargs)
    if b is not None and isinstance(b.get("tensor"), TensorMeta):
        return b["tensor"].dtype.name, b.get("copy", False)
    raise invalid_arguments("to", args, kwargs, _OVERLOADS)


def type_name(spec: str) -> str:
    """Tensor.type's string form, 'torch.DoubleTensor' → 'float64' (PyTorch's ValueError
    for any other string, a dtype name included)."""
    by_type = {f"torch.{t}Tensor": n for n, t in _TORCH_TYPE.items()}
    if spec in by_type:
        return by_type[spec]
    if spec.startswith("torch.cuda."):
        raise AssertionError("Torch not compiled with CUDA enabled")
    raise ValueError(f"invalid type: {spec!r}")
