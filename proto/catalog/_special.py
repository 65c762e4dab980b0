"""Functions that numpy lacks or that numpy and CuPy spell differently, resolved once
per array module.

numpy has no erf: SciPy's is used when it is installed, else math.erf elementwise
(correct, slower). CuPy has its own in cupyx.scipy.special.
Accumulating scatter (numpy's `add.at`) is CuPy's `add.at` (cupyx.scatter_add before
CuPy 13), whose atomic adds do not take float16: those go through float32.
"""

from __future__ import annotations

import math
from functools import cache


@cache
def _erf_for(module: str):
    if module.startswith("cupy"):
        from cupyx.scipy.special import erf
        return erf
    try:
        from scipy.special import erf
        return erf
    except ImportError:  # pragma: no cover - scipy is present in the test environment
        import numpy as np
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
    import numpy as np
    return np.add.at


def scatter_add(xp, out, key, values) -> None:
    """out[key] += values, where repeated indices accumulate (numpy's add.at)."""
    _scatter_add_for(xp.__name__)(out, key, values)
