"""The Tensor's static facts: shape, dtype, device (the base of TensorBase; none of these
records a node or needs a round trip). Dtype casts are TensorBase's, new_* _creation's."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from remotegrad.proto.catalog import FLOATING

from . import _dtypes
from ._strides import is_contiguous
from ._views import geometry
from ._default_device import _parse as parse_device
from ._size import Size, device

if TYPE_CHECKING:
    from ._tensor import Tensor

_TORCH_TYPE = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
               "bool": "Bool"}


def torch_type_name(dtype: str) -> str:
    return _TORCH_TYPE[dtype]


def _wrap_dim(dim: builtins.int, ndim: builtins.int) -> builtins.int:
    lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
    if not lo <= dim <= hi:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim % ndim if ndim else 0


class TensorMeta:
    __slots__ = ()

    # --- shape and dtype -----------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._node.meta.shape)

    def size(self, dim: builtins.int | None = None) -> Size | builtins.int:
        if dim is None:
            return self.shape
        return self.shape[_wrap_dim(dim, self.dim())]

    def dim(self) -> builtins.int:
        return len(self._node.meta.shape)

    ndim = property(dim)
    ndimension = dim

    def numel(self) -> builtins.int:
        return self._node.meta.numel

    nelement = numel

    def element_size(self) -> builtins.int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> builtins.int:
        return self._node.meta.nbytes

    @property
    def itemsize(self) -> builtins.int:
        return self.dtype.itemsize

    def __len__(self) -> builtins.int:
        if not self.dim():
            raise TypeError("len() of a 0-d tensor")
        return self._node.meta.shape[0]

    @property
    def dtype(self) -> _dtypes.dtype:
        return _dtypes.from_name(self._node.meta.dtype)

    def is_floating_point(self) -> builtins.bool:
        return self._node.meta.dtype in FLOATING

    @property
    def device(self) -> device:
        return device("cpu")

    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators
    is_cuda = False
    is_sparse = False
    is_quantized = False
    is_meta = False
    layout = "torch.strided"

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device=None, non_blocking: builtins.bool = False, **kwargs) -> Tensor:
        """Fails as on a CPU-only PyTorch build (remotegrad.cuda.is_available() is False:
        the cluster, not the program, decides where arithmetic runs; .to('cuda') agrees)."""
        if isinstance(device, builtins.int) and not isinstance(device, builtins.bool):
            raise RuntimeError("Device index must not be negative" if device < 0 else
                               "Cannot access accelerator device when none is available.")
        if device is not None:
            if parse_device(device).type != "cuda":
                raise RuntimeError("Invalid device, must be cuda device")
        raise AssertionError("Torch not compiled with CUDA enabled")

    # --- strides: PyTorch's, kept as metadata (_strides.py); the worker's are contiguous
    def contiguous(self, memory_format=None) -> Tensor:
        """self where PyTorch's is contiguous, else a contiguous copy (CloneBackward0)."""
        if self.is_contiguous():
            return self
        return self.clone()

    def is_contiguous(self, memory_format=None) -> builtins.bool:
        """PyTorch's answer for the default format; any other format is accepted as
        laid out (_memory_format.py)."""
        if memory_format is not None and getattr(memory_format, "_name", "") not in (
                "contiguous_format", "preserve_format"):
            return True
        return is_contiguous(geometry(self))

    def stride(self, dim=None) -> tuple[builtins.int, ...] | builtins.int:
        strides = geometry(self)[2]
        if dim is None:
            return strides
        if not strides:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return strides[_wrap_dim(builtins.int(dim), len(strides))]

    def storage_offset(self) -> builtins.int:
        return geometry(self)[0]
