"""Array backends: numpy (default) or cupy, chosen once per process."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Backend:
    name: str
    xp: Any
    to_device: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]


numpy_backend = Backend("numpy", np, lambda a: a, lambda a: a)


def _cupy_backend(device: int = 0) -> Backend:
    import cupy
    cupy.cuda.Device(device).use()
    return Backend("cupy", cupy, cupy.asarray, cupy.asnumpy)


def select(name: str | None = None, device: int = 0) -> Backend:
    """`numpy`, `cupy`, or `auto` (cupy only when it imports and sees a GPU)."""
    name = (name or os.environ.get("REMOTEGRAD_BACKEND") or "numpy").lower()
    if name == "numpy":
        return numpy_backend
    if name == "cupy":
        return _cupy_backend(device)
    if name == "auto":
        try:
            import cupy
            if cupy.cuda.runtime.getDeviceCount() > 0:
                return _cupy_backend(device)
        except Exception:  # noqa: BLE001  (no cupy, no driver, no device: all mean numpy)
            pass
        return numpy_backend
    raise ValueError(f"unknown backend {name!r}: expected numpy, cupy or auto")
