"""PyTorch's checks of index_put_/index_put's arguments, before anything is computed.

index_put_ is not x[key] = value: its parser takes only a tuple (or list) of tensors and a
tensor of x's dtype, and ATen's _index_put_impl_ counts the indices as given (a mask one)
against x's dims, "(got N)" in its message; so a 0-d mask on a 0-d tensor, which
x[mask] = v takes (as x.unsqueeze(-1)), is refused here."""

from __future__ import annotations

from typing import Any

from remotegrad.proto.catalog._types import torch_dtype_name

from ._arg_check import missing
from ._tensor_base import TensorBase
from ._tensor_meta import _wrap_dim

_PARAMS = ("indices", "values", "accumulate")
_INDEX_DTYPES = ("int64", "int32", "uint8", "bool")


def parse(name: str, offset: int, args: tuple, kwargs: dict, input: Any = None) -> tuple:
    """(indices, values, accumulate) of a call whose arguments after input are `args`;
    `offset`: 0 for the method, 1 for torch.index_put (`input` its argument 0, whose type
    the parser checks first once the arguments are bound)."""
    if len(args) > 3:
        raise TypeError(f"{name}() takes from {2 + offset} to {3 + offset} positional "
                        f"arguments but {len(args) + offset} were given")
    for key in kwargs:
        if key in _PARAMS[:len(args)]:
            raise TypeError(f"{name}() got multiple values for argument '{key}'")
        if key not in _PARAMS:
            raise TypeError(f"{name}() got an unexpected keyword argument '{key}'")
    bound = dict(zip(_PARAMS, args), **kwargs)
    missing(name, _PARAMS[:2], args, kwargs, args)
    if offset and not isinstance(input, TensorBase):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")

    def where(param: str) -> str:  # PyTorch names the position of a positional argument
        return f" (position {_PARAMS.index(param) + 1 + offset})" if param not in kwargs else ""
    indices, values = bound["indices"], bound["values"]
    accumulate = bound.get("accumulate", False)
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"{name}(): argument 'indices'{where('indices')} must be tuple of "
                        f"Tensors, not {_type(indices)}")
    for i, t in enumerate(indices):
        if not isinstance(t, TensorBase):
            raise TypeError(f"expected Tensor as element {i} in argument {offset}, but got "
                            f"{type(t).__name__}")
    if not isinstance(values, TensorBase):
        raise TypeError(f"{name}(): argument 'values'{where('values')} must be Tensor, not "
                        f"{_type(values)}")
    if not isinstance(accumulate, bool):
        raise TypeError(f"{name}(): argument 'accumulate'{where('accumulate')} must be bool, "
                        f"not {_type(accumulate)}")
    return tuple(indices), values, accumulate


def _type(x: Any) -> str:
    return "Tensor" if isinstance(x, TensorBase) else type(x).__name__


def check(self: TensorBase, indices: tuple, values: TensorBase, accumulate: bool) -> bool:
    """ATen's _index_put_impl_ checks, in its order: the count of indices, their dtypes,
    each mask's sizes against the dims it covers (the values' dtype later: check_dtype).
    One mask (or none) and one value, not accumulated, is its masked_fill_ of value.item():
    a value of any dtype and shape, a bool mask only. Whether it is that fill."""
    if len(indices) > self.dim():
        raise IndexError(f"too many indices for tensor of dimension {self.dim()} "
                         f"(got {len(indices)})")
    if not indices:  # ATen's undefined mask (its errors are internal ones)
        raise RuntimeError(_NO_INDEX[0] if accumulate or values.numel() != 1 else
                           _NO_INDEX[1] if self.dim() else _NO_INDEX[2])
    fill = (not accumulate and values.numel() == 1 and len(indices) == 1
            and indices[0].dtype.name in ("bool", "uint8"))
    if any(t.dtype.name not in _INDEX_DTYPES for t in indices):
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    dim = 0
    for t in indices:
        if t.dtype.name not in ("bool", "uint8"):
            dim += 1
            continue
        for j, size in enumerate(t.shape):
            src = _wrap_dim(dim + j, self.dim())  # PyTorch's self.size(d): d may be past it
            if size != self.shape[src]:
                raise IndexError(f"The shape of the mask {list(t.shape)} at index {j} does "
                                 f"not match the shape of the indexed tensor "
                                 f"{list(self.shape)} at index {src}")
        dim += t.dim()
    if fill and indices[0].dtype.name == "uint8":
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                           "unsigned char")  # (setitem's, _shape.UINT8_FILL)
    return fill


def check_dtype(self: TensorBase, values: TensorBase) -> None:
    """The values' dtype, which ATen checks after their shape against the indexed region
    (not for a masked fill)."""
    if values.dtype != self.dtype:
        raise RuntimeError(
            "Index put requires the source and destination dtypes match, got "
            f"{torch_dtype_name(self.dtype.name)} for the destination and "
            f"{torch_dtype_name(values.dtype.name)} for the source.")


_NO_INDEX = (
    'ntensor >= 3 INTERNAL ASSERT FAILED at "/__w/pytorch/pytorch/aten/src/ATen/native/cpu/'
    'IndexKernelUtils.h":8, please report a bug to PyTorch. ',
    "sym_strides() called on an undefined Tensor",
    "masked_fill_ only supports boolean masks, but got mask with dtype nullptr (uninitialized)")
