"""Functions that numpy lacks or that numpy and CuPy spell differently, resolved once
per array module; and the hooks for the few CUDA kernels the worker's engine launches on
CuPy (row-wise (log-)softmax and cross-entropy: DEVICE, filled by worker/engine/kernels).

numpy has no erf: SciPy's is used when it is installed, else math.erf elementwise
(correct, slower). CuPy has its own in cupyx.scipy.special.
Accumulating scatter (numpy's `add.at`) is CuPy's `add.at` (cupyx.scatter_add before
CuPy 13), whose atomic adds do not take float16: those go through float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np


@cache
def _erf_for(module: str):
    if module.startswith("cupy"):
        from cupyx.scipy.special import erf
        return erf
    try:
        from scipy.special import erf
        return erf
    except ImportError:  # pragma: no cover - scipy is present in the test environment
        ufunc = np.frompyfunc(math.erf, 1, 1)
        # frompyfunc answers a bare Python float for 0-d input: asarray makes it an array.
        return lambda a: np.asarray(ufunc(a)).astype(a.dtype)


def erf(xp, a):
    return _erf_for(xp.__name__)(a)


@cache
def _scatter_add_for(module: str):
    if module.startswith("cupy"):
        import cupy
        if hasattr(cupy.add, "at"):  # CuPy 13+; cupyx.scatter_add is deprecated there
            scatter_add = cupy.add.at
        else:  # pragma: no cover - older CuPy
            from cupyx import scatter_add

        def add(out, key, values):
            if out.dtype.name == "float16":
                wide = out.astype("float32")
                scatter_add(wide, key, values.astype("float32"))
                out[...] = wide
            else:
                scatter_add(out, key, values)
        return add
    return np.add.at


def scatter_add(xp, out, key, values) -> None:
    """out[key] += values, where repeated indices accumulate (numpy's add.at)."""
    _scatter_add_for(xp.__name__)(out, key, values)


# --- device kernels: row-wise (log-)softmax and cross-entropy on CuPy ----------------------
# One launch where the array-module form is several (a training step's host time is mostly
# launches). The catalog holds no CUDA source: the worker's engine registers its kernels
# here (worker/engine/kernels.py); without them the forwards take their array-module form.
DEVICE: dict[str, Callable] = {}


def softmax_rows_apply(xp, a, dim) -> bool:
    """Whether `softmax_rows` takes this case: a registered kernel, CuPy, float32/64,
    C-contiguous, non-empty, the last dim."""
    return ("softmax_rows" in DEVICE and xp.__name__ == "cupy"
            and a.dtype.name in ("float32", "float64") and a.size > 0
            and a.ndim > 0 and dim in (-1, a.ndim - 1) and a.flags.c_contiguous)


def softmax_rows(xp, a, take_log: bool):
    """softmax (or log_softmax) of `a` over its last dim, in one launch."""
    return DEVICE["softmax_rows"](xp, a, take_log)


def ce_rows_apply(xp, x) -> bool:
    """Whether the cross-entropy row kernels take `x` (N, C)."""
    return "ce_rows" in DEVICE and softmax_rows_apply(xp, x, -1) and x.ndim == 2


def ce_rows(xp, x, t, ignore_index: int, g=None):
    """Per-row cross-entropy of x (N, C) against int targets t (N,), in one launch; with
    `g` (N,), its gradient g[:, None] * (softmax(x) - onehot(t)) instead."""
    return DEVICE["ce_rows"](xp, x, t, ignore_index, g)


_SAME_WIDTH_INT = {2: np.int16, 4: np.int32, 8: np.int64}


def zero_where(xp, mask, x):
    """`xp.where(mask, 0, x)`, bit for bit (-0.0 and NaN kept where x is kept, +0.0 where
    masked), without a branch per element: numpy's `where` over an unpredictable mask (a
    relu's) costs about five ufunc passes. A float's bits are ANDed with all-ones or
    all-zeros; other dtypes multiply (exact for integers and bools). Not for fused
    kernels: they keep `where`."""
    if x.dtype.kind != "f":
        return x * ~mask
    width = _SAME_WIDTH_INT[x.dtype.itemsize]
    ones = -(~mask).astype(width)  # 1 -> all ones
    return xp.bitwise_and(ones, x.view(width)).view(x.dtype)
