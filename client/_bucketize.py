"""torch.bucketize and torch.searchsorted: the index each value would be inserted at in
sorted boundaries, counted with comparisons (how many boundaries lie below each value, or
at or below it for right=True), which gives the binary search's answer for sorted
boundaries (PyTorch's requirement; for unsorted ones both are unspecified). The comparison
holds values x boundaries elements: fine for the bins of data preparation, large for long
boundary tensors. Integer results, no gradient, as in PyTorch."""

from __future__ import annotations

import numbers

from remotegrad.proto.catalog._types import torch_dtype_name

from ._creation import tensor
from ._tensor_base import TensorBase, apply

_NAME = "torch.searchsorted()"


def _count(boundaries: TensorBase, values: TensorBase, right: bool, out_int32: bool
           ) -> TensorBase:
    """Per value, the boundaries below it (at or below it with right): the last dim of
    boundaries against a new last dim of values."""
    b = apply("unsqueeze", boundaries, dim=-2) if boundaries.dim() > 1 else boundaries
    v = apply("unsqueeze", values, dim=-1)
    below = apply("le" if right else "lt", b, v)
    count = apply("sum", below, dim=(-1,))
    return apply("cast", count, dtype="int32") if out_int32 else count


def _as_tensor(value) -> TensorBase:
    return value if isinstance(value, TensorBase) else tensor(value)


def bucketize(input, boundaries: TensorBase, *, out_int32: bool = False, right: bool = False,
              out=None) -> TensorBase:
    if boundaries.dim() != 1:
        raise RuntimeError("boundaries tensor must be 1 dimension, but got "
                           f"dim({boundaries.dim()})")
    return _count(boundaries, _as_tensor(input), right, out_int32)


def _side(side, right: bool) -> bool:
    if side is None:
        return right
    if side not in ("left", "right"):
        raise RuntimeError(f"{_NAME}: side can only be 'left' or 'right' but got {side}")
    if right and side == "left":
        raise RuntimeError(f"{_NAME}: side and right can't be set to opposites, got side of "
                           "left while right was True")
    return side == "right"


def searchsorted(sorted_sequence: TensorBase, input, *, out_int32: bool = False,
                 right: bool = False, side: str | None = None, out=None, sorter=None
                 ) -> TensorBase:
    right = _side(side, right)
    seq = sorted_sequence
    if seq.dim() == 0:
        raise RuntimeError(f"{_NAME}: boundaries tensor should have positive dimension, but "
                           "got 0 dimension")
    if isinstance(input, numbers.Number) and seq.dim() != 1:
        raise RuntimeError(f"{_NAME}: input value can be a scalar only when boundaries tensor "
                           f"dimension is 1, but we got boundaries tensor dim({seq.dim()}) and "
                           "input value's dim(0) numel(1)")
    values = _as_tensor(input)
    if seq.dim() != 1 and tuple(seq.shape[:-1]) != tuple(values.shape[:-1]):
        raise RuntimeError(f"{_NAME}: boundaries tensor should be 1 dimension or the first N-1 "
                           "dimensions of boundaries tensor and input value tensor must "
                           f"match, but we got boundaries tensor {list(seq.shape)} and input "
                           f"value tensor {list(values.shape)}")
    if sorter is not None:
        if sorter.dtype.name != "int64":
            raise RuntimeError(f"{_NAME}: sorter must be a tensor of long dtype but got dtype "
                               f"{torch_dtype_name(sorter.dtype.name)}")
        if tuple(sorter.shape) != tuple(seq.shape):
            raise RuntimeError(f"{_NAME}: boundary and sorter must have the same size, but got "
                               f"boundary tensor {list(seq.shape)}and got sorter tensor "
                               f"{list(sorter.shape)}")
        seq = apply("gather", seq, sorter, dim=-1)
    return _count(seq, values, right, out_int32)


FUNCTIONS = {"bucketize": bucketize, "searchsorted": searchsorted}
