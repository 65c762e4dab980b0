"""Special functions that numpy lacks, resolved once per array module.

numpy has no erf: SciPy's is used when it is installed, else math.erf elementwise
(correct, slower). CuPy has its own in cupyx.scipy.special.
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
