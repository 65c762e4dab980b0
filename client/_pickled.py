"""Whole objects in a checkpoint (torch.save(model)): a pickle whose tensors are kept out of
it as arrays (persistent ids), and a restricted unpickler for weights_only loading.

The restricted unpickler admits only plain containers and the classes allowlisted with
add_safe_globals, as PyTorch's weights-only unpickler does, with PyTorch's message for any
other global; weights_only=False unpickles everything (run only on trusted files)."""

from __future__ import annotations

import collections
import io
import pickle
from contextlib import contextmanager
from typing import Any

import numpy as np

_DEFAULT_SAFE = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): collections.Counter,
    **{("builtins", t.__name__): t for t in (set, frozenset, bytearray, complex, slice)},
}
_user_safe: dict[tuple[str, str], Any] = {}


def _remotegrad_safe() -> dict[tuple[str, str], Any]:
    # dtypes (pickled by name), torch.Size and torch.device look-alikes: data, not code
    from . import _dtypes, _size
    return {(f.__module__, f.__qualname__): f
            for f in (_dtypes.from_name, _size.Size, _size.device)}


def _key(obj) -> tuple[str, str]:
    if isinstance(obj, tuple):  # (obj, "module.name") as PyTorch accepts
        obj, name = obj
        module, _, qualname = name.rpartition(".")
        return module, qualname
    return obj.__module__, obj.__qualname__


def add_safe_globals(safe_globals: list) -> None:
    """Allow these classes/functions in weights_only loads (torch.serialization's)."""
    for obj in safe_globals:
        _user_safe[_key(obj)] = obj[0] if isinstance(obj, tuple) else obj


def get_safe_globals() -> list:
    return list(_user_safe.values())


def clear_safe_globals() -> None:
    _user_safe.clear()


@contextmanager
def safe_globals(safe_globals: list):
    saved = dict(_user_safe)
    add_safe_globals(safe_globals)
    try:
        yield
    finally:
        _user_safe.clear()
        _user_safe.update(saved)


class _Pickler(pickle.Pickler):
    def __init__(self, file, protocol: int, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(file, protocol)
        self.arrays, self.seen = arrays, {}

    def persistent_id(self, obj):
        from ._tensor import Tensor
        if not isinstance(obj, Tensor):
            return None
        key = self.seen.get(id(obj))
        if key is None:  # one array per tensor object: tied weights stay one tensor
            key = self.seen[id(obj)] = f"t{len(self.arrays)}"
            self.arrays[key] = np.asarray(obj.detach()._value())
        from .nn import Parameter
        return ("tensor", key, isinstance(obj, Parameter), bool(obj.requires_grad))


def dumps(obj: Any, arrays: dict[str, np.ndarray], protocol: int) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, max(protocol, 2), arrays).dump(obj)  # pickle's own errors, as torch.save
    return buffer.getvalue()


_UNSAFE = ("Weights only load failed. This file can still be loaded, to do so you have two "
           "options, do those steps only if you trust the source of the checkpoint. \n\t(1) "
           "Re-running `torch.load` with `weights_only` set to `False` will likely succeed, "
           "but it can result in arbitrary code execution. Do it only if you got the file "
           "from a trusted source.\n\t(2) Alternatively, to load with `weights_only=True` "
           "please check the recommended steps in the following error message.\n\t"
           "WeightsUnpickler error: Unsupported global: GLOBAL {name} was not an allowed "
           "global by default. Please use `torch.serialization.add_safe_globals([{name}])` "
           "or the `torch.serialization.safe_globals([{name}])` context manager to "
           "allowlist this global if you trust this class/function.")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, arrays: dict[str, np.ndarray], restricted: bool) -> None:
        super().__init__(file)
        self.arrays, self.restricted, self.made = arrays, restricted, {}

    def find_class(self, module: str, name: str):
        if not self.restricted:
            return super().find_class(module, name)
        found = (_DEFAULT_SAFE.get((module, name)) or _remotegrad_safe().get((module, name))
                 or _user_safe.get((module, name)))
        if found is None:
            raise pickle.UnpicklingError(_UNSAFE.format(name=f"{module}.{name}"))
        return found

    def persistent_load(self, pid):
        kind, key, parameter, requires_grad = pid
        if kind != "tensor" or key not in self.arrays:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        if key not in self.made:
            from ._tensor import Tensor
            out = Tensor._from_array(np.array(self.arrays[key]))
            if parameter:
                from .nn import Parameter
                out = Parameter(out, requires_grad=requires_grad)
            elif requires_grad:
                out.requires_grad_(True)
            self.made[key] = out
        return self.made[key]


def loads(data: bytes, arrays: dict[str, np.ndarray], restricted: bool) -> Any:
    return _Unpickler(io.BytesIO(data), arrays, restricted).load()
