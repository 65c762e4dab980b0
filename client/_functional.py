"""Installs the op table on Tensor and gathers the module-level functions
(`remotegrad.add`, `remotegrad.matmul`, ...) that `remotegrad/__init__` re-exports."""

from __future__ import annotations

from typing import Any

from . import _ops, _operators, _shape
from ._tensor import Tensor, apply


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return input.clone()


def detach(input: Tensor) -> Tensor:
    return input.detach()


def _clone(self: Tensor, *, memory_format=None) -> Tensor:
    return apply("cast", self, dtype=self._node.meta.dtype, torch_name="CloneBackward0")


Tensor.clone = _clone

FUNCTIONS: dict[str, Any] = {}
FUNCTIONS.update(_ops.install())
FUNCTIONS.update(_operators.install())
FUNCTIONS.update(_shape.install())
FUNCTIONS.update(is_tensor=is_tensor, numel=numel, clone=clone, detach=detach)
