"""The Tensor's static facts and conversions: shape, dtype, device, dtype casts and the
new_* constructors (a mixin of Tensor; none of these needs a round trip)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from remotegrad.proto.catalog import FLOATING

from . import _dtypes

if TYPE_CHECKING:
    from ._size import Size, device
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
        from ._size import Size
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

    def type(self, dtype=None) -> str | Tensor:
        if dtype is None:
            return f"torch.{torch_type_name(self._node.meta.dtype)}Tensor"
        return self.to(dtype)

    @property
    def device(self) -> device:
        from ._size import device
        return device("cpu")

    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators
    is_cuda = False
    is_sparse = False
    is_quantized = False
    is_meta = False
    layout = "torch.strided"

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args, **kwargs) -> Tensor:
        return self  # arithmetic already runs on the cluster's devices

    def contiguous(self, *args, **kwargs) -> Tensor:
        return self

    def is_contiguous(self, *args, **kwargs) -> builtins.bool:
        return True

    def to(self, *args, **kwargs) -> Tensor:
        """to(dtype), to(device), to(device, dtype), to(other): devices are accepted (the
        cluster chooses where arithmetic runs); a dtype change records a cast."""
        target = kwargs.get("dtype")
        for a in args:
            if isinstance(a, TensorMeta):
                target = a.dtype
            elif isinstance(a, _dtypes.dtype):
                target = a
        name = _dtypes.resolve(target)
        if name is None or name == self._node.meta.dtype:
            return self
        from ._tensor import apply
        return apply("cast", self, dtype=name)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(_dtypes.float32)

    def double(self) -> Tensor:
        return self.to(_dtypes.float64)

    def half(self) -> Tensor:
        return self.to(_dtypes.float16)

    def long(self) -> Tensor:
        return self.to(_dtypes.int64)

    def int(self) -> Tensor:
        return self.to(_dtypes.int32)

    def short(self) -> Tensor:
        return self.to(_dtypes.int16)

    def bool(self) -> Tensor:
        return self.to(_dtypes.bool)

    def byte(self) -> Tensor:
        return self.to(_dtypes.uint8)

    # --- new_* ---------------------------------------------------------------------------
    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
        from ._creation import tensor
        return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        from ._creation import zeros
        return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        from ._creation import ones
        return ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return self.new_zeros(*size, dtype=dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None,
                 requires_grad=False) -> Tensor:
        from ._creation import full
        return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)

