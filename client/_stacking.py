"""Function-only shape helpers PyTorch builds from cat, reshape and expand: atleast_1d/2d/3d,
hstack, vstack, dstack, column_stack and meshgrid, with PyTorch's checks and messages (their
grad_fns are those of the ops they are made of, as in PyTorch: CatBackward0,
ExpandBackward0)."""

from __future__ import annotations

from typing import Any

from ._tensor_base import TensorBase, apply
from ._warn import warn_user


def _reshaped(t: TensorBase, shape: tuple[int, ...]) -> TensorBase:
    return t if tuple(t.shape) == shape else apply("reshape", t, shape=shape)


def _atleast(n: int, tensors: tuple) -> Any:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(_atleast(n, (t,)) for t in tensors[0])
    if len(tensors) != 1:
        return tuple(_atleast(n, (t,)) for t in tensors)
    t = tensors[0]
    shape = tuple(t.shape)
    if len(shape) >= n:
        return t
    # PyTorch's padding: () → (1,) → (1, 1) → (1, 1, 1) by reshape; (n,) → (1, n) →
    # (1, n, 1) and (m, n) → (m, n, 1) by unsqueeze (UnsqueezeBackward0)
    if len(shape) == 0:
        return _reshaped(t, (1,) * n)
    if len(shape) == 1:
        t = apply("unsqueeze", t, dim=0)
    return t if t.dim() >= n else apply("unsqueeze", t, dim=-1)


def atleast_1d(*tensors):
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    return _atleast(3, tensors)


def _sequence(name: str, tensors) -> list:
    if not isinstance(tensors, (list, tuple)):
        kind = "Tensor" if isinstance(tensors, TensorBase) else type(tensors).__name__
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, "
                        f"not {kind}")
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return list(tensors)


def hstack(tensors, *, out=None) -> TensorBase:
    ts = [atleast_1d(t) for t in _sequence("hstack", tensors)]
    return apply("cat", *ts, dim=0 if ts[0].dim() == 1 else 1)


def vstack(tensors, *, out=None) -> TensorBase:
    return apply("cat", *[atleast_2d(t) for t in _sequence("vstack", tensors)], dim=0)


def dstack(tensors, *, out=None) -> TensorBase:
    return apply("cat", *[atleast_3d(t) for t in _sequence("dstack", tensors)], dim=2)


def column_stack(tensors, *, out=None) -> TensorBase:
    ts = [_reshaped(t, (t.numel(), 1)) if t.dim() <= 1 else t
          for t in _sequence("column_stack", tensors)]
    return apply("cat", *ts, dim=1)


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warn_user("torch.meshgrid: in an upcoming release, it will be required to pass the "
                  "indexing argument.")
        indexing = "ij"
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for t in tensors:
        if t.dim() > 1:
            raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list "
                               f"but got: {t}")
    if any(t.dtype != tensors[0].dtype for t in tensors):
        raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    if indexing not in ("xy", "ij"):
        raise RuntimeError('torch.meshgrid: indexing must be one of "xy" or "ij", but '
                           f"received: {indexing}")
    # xy puts the first two inputs' axes the other way round (Cartesian, NumPy's default)
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for t, axis in zip(tensors, axes):
        shape[axis] = t.numel()
    grids = []
    for t, axis in zip(tensors, axes):
        view = [1] * len(tensors)
        view[axis] = t.numel()
        grids.append(apply("expand", _reshaped(t, tuple(view)), shape=tuple(shape)))
    return tuple(grids)
