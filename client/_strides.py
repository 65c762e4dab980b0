"""PyTorch's strides, kept on the client as metadata only (the worker owns the memory and
lays every value out contiguously): a tensor's geometry is (storage offset, sizes,
strides) over the elements of its root (_views.py), whose own geometry is contiguous until
t_()/transpose_()/squeeze_()/unsqueeze_() change it. Each view op maps its input's
geometry to its output's as PyTorch's kernel does (select/slice/narrow move the offset,
unsqueeze inserts PyTorch's stride, expand puts 0, diagonal
sums two strides, reshape/view/flatten keep the layout
when computeStride can); everything else about a view (where its elements are, whether it
is contiguous, whether a write through it is refused) is read off the geometry."""

from __future__ import annotations

import math

import numpy as np
from remotegrad.proto.catalog.indexing import parse_key
from remotegrad.proto.catalog.shape import piece_sizes

Geometry = tuple  # (offset: int, sizes: tuple[int, ...], strides: tuple[int, ...])


def contiguous(shape: tuple) -> Geometry:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return 0, tuple(shape), tuple(reversed(strides))


def is_contiguous(geom: Geometry) -> bool:
    """PyTorch's: empty tensors are, and dims of size 1 have any stride."""
    _, sizes, strides = geom
    if 0 in sizes:
        return True
    want = 1
    for size, stride in zip(reversed(sizes), reversed(strides)):
        if size != 1:
            if stride != want:
                return False
            want *= size
    return True


def overlaps(geom: Geometry) -> bool:
    """PyTorch's has_internal_overlap YES: a dim of more than one element at stride 0
    (of a tensor with any elements)."""
    sizes, strides = geom[1], geom[2]
    return 0 not in sizes and any(n > 1 and s == 0 for n, s in zip(sizes, strides))


def dense(geom: Geometry) -> bool:
    """PyTorch's is_non_overlapping_and_dense: some order of the dims (by stride, dims of
    one element aside) lays the elements out one after another."""
    _, sizes, strides = geom
    order = sorted((s, n) for n, s in zip(sizes, strides) if n >= 2)
    want = 1
    for stride, size in order:
        if stride != want:
            return False
        want *= size
    return True


def partial(a: Geometry, b: Geometry) -> bool:
    """PyTorch's get_overlap_status PARTIAL for two views of one storage: both dense,
    their element ranges meet, and they are not the same elements in the same order."""
    if 0 in a[1] or 0 in b[1] or not dense(a) or not dense(b):
        return False  # NO, or TOO_HARD: PyTorch lets it be
    a0, b0 = a[0], b[0]
    a1, b1 = a0 + math.prod(a[1]), b0 + math.prod(b[1])
    if (a0, a1) == (b0, b1):
        return tuple(a[2]) != tuple(b[2])
    return a0 < b1 and b0 < a1


def positions(geom: Geometry) -> np.ndarray:
    """The storage element number of each element (an int64 array of the sizes)."""
    offset, sizes, strides = geom
    out = np.full(sizes, offset, dtype=np.int64)
    for d, (size, stride) in enumerate(zip(sizes, strides)):
        shape = [1] * len(sizes)
        shape[d] = size
        out = out + (np.arange(size, dtype=np.int64) * stride).reshape(shape)
    return out


def compute_stride(sizes: tuple, strides: tuple, shape: tuple) -> tuple | None:
    """PyTorch's computeStride: the strides `shape` takes as a view of (sizes, strides),
    or None when some new dim would span two non-contiguous chunks (a copy is needed)."""
    if 0 in sizes or not sizes:
        if tuple(sizes) == tuple(shape):
            return tuple(strides)
        if not sizes:  # a 0-d tensor: one element at stride 1
            sizes, strides = (1,), (1,)
        else:
            return contiguous(shape)[2] if shape else ()
    out = [0] * len(shape)
    view_d = len(shape) - 1
    base = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(sizes) - 1, -1, -1):
        tensor_numel *= sizes[d]
        if d == 0 or (sizes[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or shape[view_d] == 1):
                out[view_d] = view_numel * base
                view_numel *= shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(out) if view_d == -1 else None


def _dim(d: int, n: int) -> int:
    return d + n if d < 0 else d


def _index(geom: Geometry, key: str) -> Geometry:
    """A basic index, item by item as PyTorch's applySlicing."""
    offset, sizes, strides = geom
    items = parse_key(key)
    used = sum(1 for kind, *_ in items if kind not in ("none", "ellipsis"))
    d, out_sizes, out_strides = 0, [], []
    for kind, *value in items:
        if kind == "ellipsis":
            take = len(sizes) - used
            out_sizes += sizes[d:d + take]
            out_strides += strides[d:d + take]
            d += take
        elif kind == "none":  # unsqueeze of what is left: the next dim's extent
            out_sizes.append(1)
            out_strides.append(sizes[d] * strides[d] if d < len(sizes) else 1)
        elif kind == "int":
            offset += _dim(value[0], sizes[d]) * strides[d]
            d += 1
        else:
            start, stop, step = value[0].indices(sizes[d])
            offset += start * strides[d]
            out_sizes.append(len(range(start, stop, step)))
            out_strides.append(strides[d] * step)
            d += 1
    return offset, tuple(out_sizes) + sizes[d:], tuple(out_strides) + strides[d:]


def _narrow(geom: Geometry, dim: int, start: int, length: int) -> Geometry:
    offset, sizes, strides = geom
    d = _dim(dim, len(sizes))
    offset += _dim(start, sizes[d]) * strides[d]
    return offset, sizes[:d] + (length,) + sizes[d + 1:], strides


def _squeeze(geom: Geometry, dim=None) -> Geometry:
    offset, sizes, strides = geom
    if dim is None:
        dims = range(len(sizes))
    else:
        dims = {_dim(d, len(sizes)) for d in ((dim,) if isinstance(dim, int) else dim)}
    keep = [d for d in range(len(sizes)) if not (d in dims and sizes[d] == 1)]
    return offset, tuple(sizes[d] for d in keep), tuple(strides[d] for d in keep)


def _unsqueeze(geom: Geometry, dim: int) -> Geometry:
    offset, sizes, strides = geom
    d = dim + len(sizes) + 1 if dim < 0 else dim
    stride = sizes[d] * strides[d] if d < len(sizes) else 1
    return offset, sizes[:d] + (1,) + sizes[d:], strides[:d] + (stride,) + strides[d:]


def _permute(geom: Geometry, dims: tuple) -> Geometry:
    offset, sizes, strides = geom
    order = [_dim(d, len(sizes)) for d in dims]
    return offset, tuple(sizes[d] for d in order), tuple(strides[d] for d in order)


def _transpose(geom: Geometry, dim0: int, dim1: int) -> Geometry:
    if not geom[1]:  # a 0-d tensor's transpose(0, 0) (dims -1 and 0 wrap to its one)
        return geom
    order = list(range(len(geom[1])))
    a, b = _dim(dim0, len(order)), _dim(dim1, len(order))
    order[a], order[b] = order[b], order[a]
    return _permute(geom, tuple(order))


def _diagonal(geom: Geometry, offset: int, dim1: int, dim2: int) -> Geometry:
    """PyTorch's diagonal: dims dim1 and dim2 go, one dim of the diagonal's length at
    stride(dim1) + stride(dim2) is appended, the offset moves by the first element's row
    (offset < 0) or column (offset > 0); an empty diagonal keeps the offset."""
    start, sizes, strides = geom
    a, b = _dim(dim1, len(sizes)), _dim(dim2, len(sizes))
    if offset >= 0:
        length = max(min(sizes[a], sizes[b] - offset), 0)
        move = offset * strides[b]
    else:
        length = max(min(sizes[a] + offset, sizes[b]), 0)
        move = -offset * strides[a]
    keep = [d for d in range(len(sizes)) if d not in (a, b)]
    return (start + (move if length else 0), tuple(sizes[d] for d in keep) + (length,),
            tuple(strides[d] for d in keep) + (strides[a] + strides[b],))


def _piece(geom: Geometry, kind: str, arg, dim: int, index: int) -> Geometry:
    pieces = piece_sizes(geom[1], dim, kind, arg)
    index %= len(pieces)
    return _narrow(geom, dim, sum(pieces[:index]), pieces[index])


def _expand(geom: Geometry, shape: tuple) -> Geometry:
    """PyTorch's inferExpandGeometry (a 0-d tensor expands at stride 0 everywhere)."""
    offset, sizes, strides = geom
    n, lead = len(shape), len(shape) - len(sizes)
    out_sizes, out_strides = [0] * n, [0] * n
    for i in range(n - 1, -1, -1):
        d = i - lead
        size = sizes[d] if d >= 0 else 1
        if d >= 0:
            stride = strides[d]
        else:
            stride = out_sizes[i + 1] * out_strides[i + 1] if i < n - 1 and sizes else 0
        target = size if shape[i] == -1 else shape[i]
        if size != target:
            size, stride = target, 0
        out_sizes[i], out_strides[i] = size, stride
    return offset, tuple(out_sizes), tuple(out_strides)


def _reshape(geom: Geometry, shape: tuple) -> Geometry | None:
    strides = compute_stride(geom[1], geom[2], tuple(shape))
    return None if strides is None else (geom[0], tuple(shape), strides)


def after(op: str, attrs: dict, geom: Geometry, shape: tuple) -> Geometry | None:
    """The geometry of view op `op`'s result (of `shape`) over an input of `geom`; None
    where PyTorch's op would copy (a reshape across non-contiguous chunks)."""
    if op == "index":
        return _index(geom, attrs["key"])
    if op == "narrow":
        return _narrow(geom, attrs["dim"], attrs["start"], attrs["length"])
    if op == "squeeze":
        return _squeeze(geom, attrs.get("dim"))
    if op == "unsqueeze":
        return _unsqueeze(geom, attrs["dim"])
    if op == "transpose":
        return _transpose(geom, attrs["dim0"], attrs["dim1"])
    if op == "permute":
        return _permute(geom, attrs["dims"])
    if op == "split":
        return _piece(geom, "split", attrs["split_size_or_sections"], attrs["dim"],
                      attrs["index"])
    if op == "chunk":
        return _piece(geom, "chunk", attrs["chunks"], attrs["dim"], attrs["index"])
    if op == "diagonal":  # composed on the client (_composites.diagonal)
        return _diagonal(geom, attrs["offset"], attrs["dim1"], attrs["dim2"])
    if op in ("expand", "broadcast_to"):
        return _expand(geom, tuple(shape))
    return _reshape(geom, tuple(shape))  # reshape, flatten
