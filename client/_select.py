"""Value-dependent selections: sort, argsort, topk, nonzero, unique, where(condition).

Their result's order or shape depends on the data, so the client reads the value (one
round trip, as PyTorch synchronises for nonzero/unique) and computes the indices with
NumPy; values are then picked with the catalog's `gather`, so gradients flow as PyTorch's
(grad_fn SortBackward0 / TopkBackward0)."""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Any

import numpy as np

from ._tensor_base import apply, from_array

if TYPE_CHECKING:
    from ._tensor import Tensor


def return_type(name: str, fields: tuple[str, ...]) -> type:
    """A named tuple printed as PyTorch's torch.return_types.<name>."""
    base = namedtuple(name, fields)

    def __repr__(self) -> str:
        body = ",\n".join(f"{f}={getattr(self, f)!r}" for f in fields)
        return f"torch.return_types.{name}(\n{body})"
    return type(name, (base,), {"__slots__": (), "__repr__": __repr__})


SortResult = return_type("sort", ("values", "indices"))
TopkResult = return_type("topk", ("values", "indices"))
MedianResult = return_type("median", ("values", "indices"))
KthvalueResult = return_type("kthvalue", ("values", "indices"))


def _values(t: Tensor) -> np.ndarray:
    return t.detach()._value()


def _order(values: np.ndarray, dim: int, descending: bool) -> np.ndarray:
    keys = -values if descending and values.dtype != np.bool_ else values
    if descending and values.dtype == np.bool_:
        keys = ~values
    return np.argsort(keys, axis=dim, kind="stable").astype(np.int64)


def argsort(self: Tensor, dim: int = -1, descending: bool = False,
            stable: bool = False) -> Tensor:
    if self.dim() == 0:
        return from_array(np.zeros((), np.int64))
    return from_array(_order(_values(self), dim, descending))


def sort(self: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    if self.dim() == 0:
        return SortResult(self.clone(), from_array(np.zeros((), np.int64)))
    indices = argsort(self, dim, descending)
    values = apply("gather", self, indices, dim=dim % self.dim(), torch_name="SortBackward0")
    return SortResult(values, indices)


def topk(self: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    d = dim % max(self.dim(), 1)
    if not 0 <= k <= (self.shape[d] if self.dim() else 1):
        raise RuntimeError("selected index k out of range")
    order = _order(_values(self), d, largest)
    indices = from_array(np.take(order, np.arange(k), axis=d))
    values = apply("gather", self, indices, dim=d, torch_name="TopkBackward0")
    return TopkResult(values, indices)


def _pick(self: Tensor, position: int, dim: int, keepdim: bool, name: str, result: type):
    """The element at `position` of each sorted slice along dim: (values, indices)."""
    d = dim % max(self.dim(), 1)
    if self.dim() == 0:
        return result(self.clone(), from_array(np.zeros((), np.int64)))
    order = _order(_values(self), d, False)
    index = np.take(order, [position], axis=d)
    values = apply("gather", self, from_array(index), dim=d,
                   torch_name=name if keepdim else None)
    if not keepdim:
        values = apply("squeeze", values, dim=d, torch_name=name)
    indices = from_array(index if keepdim else np.squeeze(index, axis=d))
    return result(values, indices)


def median(self: Tensor, dim: int | None = None, keepdim: bool = False):
    if dim is None:
        flat = self.reshape(-1)
        if flat.numel() == 0:
            raise IndexError("median() input tensor cannot be empty")
        position = (flat.numel() - 1) // 2
        picked = _pick(flat, position, 0, False, "MedianBackward0", MedianResult)
        return picked.values
    position = (self.shape[dim] - 1) // 2
    return _pick(self, position, dim, keepdim, "MedianBackward1", MedianResult)


def kthvalue(self: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    size = self.shape[dim] if self.dim() else 1
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
    return _pick(self, k - 1, dim, keepdim, "KthvalueBackward0", KthvalueResult)


def nonzero(self: Tensor, *, as_tuple: bool = False) -> Any:
    found = np.nonzero(_values(self))
    if as_tuple:
        return tuple(from_array(i.astype(np.int64)) for i in found)
    return from_array(np.stack(found, axis=1).astype(np.int64) if found else
                              np.zeros((0, 0), np.int64))


def unique(self: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None) -> Any:
    values, inverse, counts = np.unique(_values(self), return_inverse=True,
                                        return_counts=True, axis=dim)
    out = [from_array(values)]
    if return_inverse:
        out.append(from_array(inverse.reshape(tuple(self.shape) if dim is None
                                                      else -1).astype(np.int64)))
    if return_counts:
        out.append(from_array(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def count_nonzero(self: Tensor, dim=None) -> Tensor:
    return (self != 0).sum(dim)


class SelectMethods:
    """These selections as Tensor methods (the same functions as remotegrad.<name>)."""

    __slots__ = ()
    argsort = argsort
    sort = sort
    topk = topk
    nonzero = nonzero
    unique = unique
    count_nonzero = count_nonzero
    median = median
    kthvalue = kthvalue


FUNCTIONS = {"argsort": argsort, "sort": sort, "topk": topk, "nonzero": nonzero,
             "unique": unique, "count_nonzero": count_nonzero, "median": median,
             "kthvalue": kthvalue}


def where_one(condition: Tensor) -> tuple[Tensor, ...]:
    """torch.where(condition): the indices of the true elements, one tensor per dim."""
    return nonzero(condition, as_tuple=True)

