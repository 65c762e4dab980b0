"""The array modules the engine tests run on: numpy always, cupy where it can.

The engine tests run once per backend (tests/engine/conftest.py); cupy's run is skipped,
with the reason, where CuPy is not installed or no GPU is visible. Values are made and
compared on the host; `to_device` and `to_host` move them.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def cupy_missing() -> str | None:
    """Why the cupy backend cannot run here, or None when it can."""
    try:
        import cupy
    except ImportError as e:
        return f"CuPy is not installed ({e}); pip install 'remotegrad[gpu]' on a GPU machine"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001  (no driver, no device: CUDARuntimeError and kin)
        return f"CuPy sees no CUDA GPU ({type(e).__name__}: {e})"
    return None if count else "CuPy sees no CUDA GPU (device count 0)"


def module(name: str):
    if name == "numpy":
        return np
    import cupy
    return cupy


def to_device(xp, a):
    """A host array on `xp`, keeping its memory layout: a strided (every other element)
    host array stays strided on the device, so the engine meets the same views there."""
    if xp is np or not isinstance(a, np.ndarray):
        return a
    if a.ndim and a.size and not a.flags.c_contiguous and a.shape[-1] > 1:
        wide = xp.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = xp.asarray(np.ascontiguousarray(a))
        return wide[..., ::2]
    return xp.asarray(a)


def to_host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)
