"""The pickle inside a checkpoint, in PyTorch's own terms, and the weights-only unpickler.

Writing: tensors are reduced as PyTorch reduces them (torch._utils._rebuild_tensor_v2 over a
persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)), dtypes are the globals
torch.float32..., Size and device are torch.Size / torch.device: real PyTorch reads the file
as its own. The storages' bytes go to the archive's data/<key> records (_serialization.py).

Reading: PyTorch's names are mapped to remotegrad's rebuilders. By default (weights_only, as
PyTorch 2.6+) only what PyTorch's weights-only unpickler admits is resolved — the tensor
rebuild functions, storage types, dtypes, torch.Size/device, OrderedDict, Counter and plain
containers, plus add_safe_globals — with PyTorch's refusal messages for anything else;
weights_only=False unpickles everything (run only on trusted files). Files of older remotegrad
versions (an .npz holding a pickle whose tensors were arrays) are read by _LegacyReader."""

from __future__ import annotations

import _codecs
import _compat_pickle
import collections
import io
import pickle
import re
import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._dtypes import dtype as _dtype

_DEFAULT_SAFE = {
    "collections.OrderedDict": collections.OrderedDict,
    "collections.Counter": collections.Counter,
    "_codecs.encode": _codecs.encode,  # bytes, as protocol 2 pickles them
    **{f"builtins.{t.__name__}": t for t in (set, bytearray, complex)},
}
_user_safe: dict[str, Any] = {}
_BLOCKED_MODULES = ("sys", "os", "posix", "nt")

# torch.<X>Storage <-> remotegrad dtype names (those with a NumPy dtype here)
_STORAGE_DTYPE = {"FloatStorage": "float32", "DoubleStorage": "float64",
                  "HalfStorage": "float16", "LongStorage": "int64", "IntStorage": "int32",
                  "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
                  "BoolStorage": "bool"}
_DTYPE_STORAGE = {v: k for k, v in _STORAGE_DTYPE.items()}
# PyTorch admits these by default; remotegrad has no such dtype and says so when one is used
_FOREIGN = {"BFloat16Storage": "bfloat16", "ComplexFloatStorage": "complex64",
            "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8",
            "QUInt8Storage": "quint8", "QInt32Storage": "qint32"}
_FOREIGN_DTYPES = ("bfloat16", "complex32", "complex64", "complex128", "cfloat", "cdouble",
                   "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "qint8",
                   "quint8", "qint32")
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")


def _key(obj) -> str:
    if isinstance(obj, tuple):  # (obj, "module.name") as PyTorch accepts
        return obj[1]
    return f"{obj.__module__}.{obj.__qualname__}"


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


# ---------------------------------------------------------------- writing


class _Name:
    """A global written by name (GLOBAL module\\nname), without importing it here."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle asks a reduce function to be callable; never called
        raise TypeError(f"{self.module}.{self.name} is only a name written in a checkpoint")


_NAMES: dict[str, _Name] = {}


def _name(full: str) -> _Name:
    if full not in _NAMES:  # one object per name: pickle's memo then repeats it as a BINGET
        module, _, name = full.rpartition(".")
        _NAMES[full] = _Name(module, name)
    return _NAMES[full]


class _Storage:
    __slots__ = ("key", "array")

    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, array


class _Data:
    """A Parameter's .data: pickled as a plain tensor without requires_grad."""

    __slots__ = ("tensor",)

    def __init__(self, tensor) -> None:
        self.tensor = tensor


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class _Writer(pickle._Pickler):
    # The pure-Python pickler: its dispatch table lets _Name write a GLOBAL by name, which
    # the C pickler cannot (it would import torch and check the object is the same).
    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, protocol: int) -> None:
        super().__init__(file, protocol)
        self.storages: dict[int, tuple[_Storage, np.ndarray]] = {}

    def _storage(self, array: np.ndarray) -> _Storage:
        held = self.storages.get(id(array))
        if held is None:  # one storage per array: tensors sharing one stay shared
            data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
            held = self.storages[id(array)] = (_Storage(str(len(self.storages)), data), array)
        return held[0]

    def _tensor_reduce(self, tensor, requires_grad: bool):
        array = np.asarray(tensor.detach()._value())
        if array.dtype.name not in _DTYPE_STORAGE:
            raise TypeError(f"cannot save a tensor of NumPy dtype {array.dtype}")
        shape = tuple(array.shape)
        return (_name("torch._utils._rebuild_tensor_v2"),
                (self._storage(array), 0, shape, _contiguous_strides(shape), requires_grad,
                 collections.OrderedDict()))

    def reducer_override(self, obj):
        from . import _size
        from ._tensor import Tensor
        if isinstance(obj, _Data):
            return self._tensor_reduce(obj.tensor, False)
        if isinstance(obj, Tensor):
            from .nn import Parameter
            if isinstance(obj, Parameter):  # as PyTorch: _rebuild_parameter(data, ...)
                return (_name("torch._utils._rebuild_parameter"),
                        (_Data(obj), bool(obj.requires_grad), collections.OrderedDict()))
            return self._tensor_reduce(obj, bool(obj.requires_grad))
        if isinstance(obj, _size.Size):
            return (_name("torch.Size"), (tuple(obj),))
        if isinstance(obj, _size.device):
            args = (obj.type,) if obj.index is None else (obj.type, obj.index)
            return (_name("torch.device"), args)
        return NotImplemented

    def persistent_id(self, obj):
        if type(obj) is not _Storage:
            return None
        storage = _name(f"torch.{_DTYPE_STORAGE[obj.array.dtype.name]}")
        return ("storage", storage, obj.key, "cpu", int(obj.array.size))

    def _save_name(self, obj: _Name) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def _save_dtype(self, obj) -> None:
        self.save(_name(f"torch.{obj.name}"))

    dispatch[_Name] = _save_name
    dispatch[_dtype] = _save_dtype


class _Probe(pickle.Pickler):
    """A first pass with the C pickler that torch.save uses, so that what cannot be pickled
    fails with the very error torch.save gives (the pure-Python pickler words it apart)."""

    def persistent_id(self, obj):
        from ._tensor import Tensor
        return 0 if isinstance(obj, (Tensor, _dtype)) else None


class _Sink:
    def write(self, data) -> None:
        pass


def dumps(obj: Any, protocol: int) -> tuple[bytes, list[tuple[str, memoryview]]]:
    """obj's pickle (data.pkl) and its storages' (key, little-endian bytes)."""
    protocol = max(int(protocol), 2)
    _Probe(_Sink(), protocol).dump(obj)
    buffer = io.BytesIO()
    writer = _Writer(buffer, protocol)
    writer.dump(obj)
    # bytes views of the contiguous arrays: the zip writer copies them once, to the file
    return buffer.getvalue(), [(s.key, memoryview(s.array.reshape(-1)).cast("B"))
                               for s, _ in writer.storages.values()]


# ---------------------------------------------------------------- reading


class _StorageType:
    """What GLOBAL torch.FloatStorage resolves to: the storage's dtype, nothing callable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPE.get(name)
        self.foreign = _FOREIGN.get(name)


class _LoadedStorage:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _ints(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise RuntimeError(f"not a checkpoint: a tensor's {what} is {value!r}")
    return value


def _view(storage, offset, size, stride) -> np.ndarray:
    if not isinstance(storage, _LoadedStorage):
        raise RuntimeError("not a checkpoint: a tensor is rebuilt from something not a storage")
    size, stride = _ints(tuple(size), "size"), _ints(tuple(stride), "stride")
    (offset,) = _ints((offset,), "storage offset")
    if len(size) != len(stride):
        raise RuntimeError(f"not a checkpoint: a tensor of size {size} has strides {stride}")
    data = storage.array
    count = int(np.prod(size, dtype=np.int64)) if size else 1
    if count == 0:
        return np.empty(size, data.dtype.newbyteorder("="))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    # a view past its storage, or one expanding a few elements into a huge copy, is refused
    if last >= data.size or (count > data.size and count > 1 << 27):
        raise RuntimeError(
            f"not a checkpoint: a tensor of size {list(size)}, stride {list(stride)} at "
            f"offset {offset} does not fit its storage of {data.size} elements")
    view = np.lib.stride_tricks.as_strided(data[offset:], size,
                                           [s * data.itemsize for s in stride])
    return view.astype(data.dtype.newbyteorder("="))  # a copy, in this machine's order


def _rebuild_tensor(storage, storage_offset, size, stride):
    from ._tensor import Tensor
    return Tensor._from_array(_view(storage, storage_offset, size, stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    out = _rebuild_tensor(storage, storage_offset, size, stride)
    return out.requires_grad_(True) if requires_grad else out


def _set_state(obj, state) -> None:
    slots = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    for name, value in {**(state or {}), **(slots or {})}.items():
        try:
            setattr(obj, name, value)
        except AttributeError:  # remotegrad tensors have slots: say what is dropped
            warnings.warn(f"remotegrad tensors hold no Python attributes: the checkpoint's "
                          f"{name!r} on a tensor was not kept", stacklevel=2)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    from .nn import Parameter
    return Parameter(data, requires_grad=bool(requires_grad))


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    out = _rebuild_parameter(data, requires_grad, backward_hooks)
    _set_state(out, state)
    return out


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_parameter,
               _rebuild_parameter_with_state)


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in _REBUILDERS:  # only PyTorch's tensor rebuilders, never a caller's choice
        raise pickle.UnpicklingError(f"Trying to call reduce for unrecognized function {func}")
    out = func(*args)
    _set_state(out, state)
    return out


def _torch_names() -> dict[str, Any]:
    from . import _dtypes, _size, _tensor
    from .nn import Parameter
    names: dict[str, Any] = {f"torch._utils.{f.__name__}": f for f in _REBUILDERS}
    names["torch._tensor._rebuild_from_type_v2"] = _rebuild_from_type_v2
    names.update({f"torch.{s}": _StorageType(s) for s in (*_STORAGE_DTYPE, *_FOREIGN)})
    names.update({f"torch.{d}": _dtypes.from_name(d) for d in _dtypes.NAMES})
    names.update({"torch.Size": _size.Size, "torch.device": _size.device,
                  "torch.Tensor": _tensor.Tensor, "torch.nn.parameter.Parameter": Parameter})
    # remotegrad's own names in files of older versions: data, not code
    names.update({_key(f): f for f in (_dtypes.from_name, _size.Size, _size.device)})
    return names


class WeightsOnlyRefusal(pickle.UnpicklingError):
    """The weights-only unpickler's refusal; load() words it as torch.load does."""


def _unsupported(module: str, name: str) -> WeightsOnlyRefusal:
    full = f"{module}.{name}"
    if module in _BLOCKED_MODULES:
        return WeightsOnlyRefusal(f"Trying to load unsupported GLOBAL {full} whose module "
                                  f"{module} is blocked.")
    if module == "builtins":  # PyTorch names builtins bare: GLOBAL eval
        full = name
    return WeightsOnlyRefusal(
        f"Unsupported global: GLOBAL {full} was not an allowed global by default. Please use "
        f"`torch.serialization.add_safe_globals([{full}])` or the "
        f"`torch.serialization.safe_globals([{full}])` context manager to allowlist this "
        "global if you trust this class/function.")


def _Tensor():
    from ._tensor import Tensor
    return Tensor


class _Reader(pickle._Unpickler):
    # The pure-Python unpickler, so that BUILD and REDUCE can be checked as PyTorch's
    # weights-only unpickler checks them.
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storage_bytes, restricted: bool) -> None:
        super().__init__(file)
        self.storage_bytes, self.restricted = storage_bytes, restricted
        self.names, self.handed, self.storages = _torch_names(), [], {}

    def find_class(self, module: str, name: str):
        # protocol 2 names Python 2's modules (__builtin__.set): mapped as PyTorch maps them
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        found = self.names.get(full) or _DEFAULT_SAFE.get(full) or _user_safe.get(full)
        if found is None and module == "torch" and name in _FOREIGN_DTYPES:
            raise RuntimeError(f"remotegrad has no dtype torch.{name}")
        if found is None:
            if self.restricted:
                raise _unsupported(module, name)
            found = super().find_class(module, name)
        self.handed.append(found)
        return found

    def _allowed(self, obj) -> bool:
        return any(obj is h for h in self.handed)

    def load_reduce(self):
        func = self.stack[-2]
        if self.restricted and not self._allowed(func):
            raise WeightsOnlyRefusal(f"Trying to call reduce for unrecognized function {func}")
        super().load_reduce()

    def load_build(self):
        inst = self.stack[-2]
        if self.restricted and not self._allowed(type(inst)) and \
                type(inst) is not collections.OrderedDict and not isinstance(inst, _Tensor()):
            raise WeightsOnlyRefusal("Can only build Tensor, Parameter, OrderedDict or types "
                                     f"allowlisted via `add_safe_globals`, but got {type(inst)}")
        super().load_build()

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unsupported persistent id encountered")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType) or type(numel) is not int or numel < 0:
            raise RuntimeError(f"not a checkpoint: persistent id {pid!r}")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise RuntimeError(f"not a checkpoint: storage key {key!r} is not a record name")
        if kind.dtype is None:
            raise RuntimeError(f"remotegrad has no dtype torch.{kind.foreign} (storage {key} "
                               f"is a torch.{kind.name})")
        if key not in self.storages:
            self.storages[key] = _LoadedStorage(self.storage_bytes(key, kind.dtype, numel))
        return self.storages[key]


def loads(data: bytes, storage_bytes, restricted: bool) -> Any:
    """Unpickle data.pkl; storage_bytes(key, dtype, numel) gives a storage's array."""
    return _Reader(io.BytesIO(data), storage_bytes, restricted).load()


class _LegacyReader(_Reader):
    """Whole objects saved by older remotegrad versions: ('tensor', key, parameter,
    requires_grad) persistent ids naming arrays of the .npz."""

    def __init__(self, file, arrays: dict[str, np.ndarray], restricted: bool) -> None:
        super().__init__(file, None, restricted)
        self.arrays, self.made = arrays, {}

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "tensor"
                and pid[1] in self.arrays):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, key, parameter, requires_grad = pid
        if key not in self.made:
            from ._tensor import Tensor
            out = Tensor._from_array(np.array(self.arrays[key]))
            if parameter:
                out = _rebuild_parameter(out, requires_grad, None)
            elif requires_grad:
                out.requires_grad_(True)
            self.made[key] = out
        return self.made[key]


def loads_legacy(data: bytes, arrays: dict[str, np.ndarray], restricted: bool) -> Any:
    return _LegacyReader(io.BytesIO(data), arrays, restricted).load()
