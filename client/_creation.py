"""Creation functions. Data made here lives on the client as a leaf and travels once."""

from __future__ import annotations

import builtins

import numpy as np

from . import _dtypes
from ._node import leaf
from ._tensor import Tensor

_rng = np.random.default_rng()


def manual_seed(seed: int):
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def _size(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(builtins.int(s) for s in size)


def _make(array: np.ndarray, dtype, requires_grad: bool) -> Tensor:
    name = _dtypes.resolve(dtype)
    if name is not None and array.dtype.name != name:
        array = array.astype(name)
    t = Tensor(leaf(array))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(array: np.ndarray) -> str:
    """PyTorch's inference from Python data: floats → default float, ints → int64."""
    kind = array.dtype.kind
    if kind == "f":
        return _dtypes.get_default_dtype().name
    if kind in "iu":
        return "int64"
    if kind == "b":
        return "bool"
    raise TypeError(f"can't convert data of dtype {array.dtype} to a tensor")


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if isinstance(data, Tensor):
        data = data.detach()._value()
    array = np.asarray(data)
    if not isinstance(data, np.ndarray):
        array = array.astype(_dtypes.resolve(dtype) or _infer_dtype(array))
    return _make(np.array(array), dtype, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None:
        return data
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    return Tensor(leaf(array))


def _default(dtype) -> str:
    return _dtypes.resolve(dtype) or _dtypes.get_default_dtype().name


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(_size(size), _default(dtype)), None, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(np.ones(_size(size), _default(dtype)), None, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = ("bool" if isinstance(fill_value, builtins.bool) else
                 "int64" if isinstance(fill_value, builtins.int) else None)
    return _make(np.full(_size((size,)), fill_value, _default(dtype)), None, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(_rng.standard_normal(_size(size)).astype(_default(dtype)), None, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(_rng.random(_size(size)).astype(_default(dtype)), None, requires_grad)


def zeros_like(t: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)
