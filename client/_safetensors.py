"""safetensors files (a JSON header and raw tensor bytes, no code in them) through the
`safetensors` package, as safetensors.torch.save_file / load_file do for PyTorch.

The package is optional: `pip install safetensors`. Its NumPy interface is used, so the
files are the same ones safetensors.torch reads and writes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._tensor import Tensor


def _package():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("safetensors files need the safetensors package: "
                          "pip install safetensors") from None
    return safetensors.numpy


def save_safetensors(tensors: dict[str, Any], filename: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> None:
    """Write a dict of tensors (a state_dict) to a .safetensors file."""
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not isinstance(value, Tensor):
            raise TypeError(f"save_safetensors takes a dict of str to Tensor, got "
                            f"{type(name).__name__} -> {type(value).__name__}")
        arrays[name] = np.ascontiguousarray(value.detach()._value())
    _package().save_file(arrays, filename, metadata=metadata)


def load_safetensors(filename: str | os.PathLike) -> dict[str, Tensor]:
    """Read a .safetensors file into a dict of tensors."""
    try:
        arrays = _package().load_file(filename)
    except (TypeError, ValueError) as error:  # e.g. BF16: no NumPy dtype
        raise RuntimeError(f"cannot read {os.fspath(filename)!r}: {error}") from None
    return {name: Tensor._from_array(np.array(array)) for name, array in arrays.items()}
