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


# --- (log-)softmax over the last dim, one kernel on CuPy ----------------------------------
# A warp per row: the row's max, then the sum of exp(x - max), then the outputs, with warp
# shuffles for the two reductions. The array-module form (max, subtract, exp, sum, log,
# subtract) is six launches, and a training step's host time is mostly launches.
_ROWS_SOURCE = r"""
__device__ float neg_inf(float) { return __int_as_float(0xff800000); }
__device__ double neg_inf(double) { return __longlong_as_double(0xfff0000000000000ULL); }
__device__ float quiet_nan(float) { return __int_as_float(0x7fc00000); }
__device__ double quiet_nan(double) { return __longlong_as_double(0x7ff8000000000000ULL); }
template <typename T> __device__ T warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <typename T> __device__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename T>
__device__ void rows(const T* x, T* y, long long nrows, long long ncols, int take_log) {
    long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= nrows) return;  /* a whole warp leaves together: the shuffles stay full */
    const T* xr = x + row * ncols;
    T* yr = y + row * ncols;
    T m = neg_inf(T(0));
    int nan = 0;
    for (long long j = lane; j < ncols; j += 32) { m = fmax(m, xr[j]); nan |= isnan(xr[j]); }
    m = warp_max(m);
    if (__any_sync(0xffffffffu, nan)) m = quiet_nan(T(0));  /* fmax skips NaN, numpy not */
    T s = 0;
    for (long long j = lane; j < ncols; j += 32) s += exp(xr[j] - m);
    s = warp_sum(s);
    if (take_log) {
        T lse = log(s);
        for (long long j = lane; j < ncols; j += 32) yr[j] = (xr[j] - m) - lse;
    } else {
        for (long long j = lane; j < ncols; j += 32) yr[j] = exp(xr[j] - m) / s;
    }
}
extern "C" __global__ void softmax_rows_f32(const float* x, float* y, long long r,
                                            long long c, int l) { rows<float>(x, y, r, c, l); }
extern "C" __global__ void softmax_rows_f64(const double* x, double* y, long long r,
                                            long long c, int l) { rows<double>(x, y, r, c, l); }
"""
_ROW_WARPS = 8  # rows per block


@cache
def _rows_kernel(dtype: str, device: int):
    """The compiled kernel for `dtype` on `device`, looked up once (a lookup per call
    cost more host time than the launch)."""
    import cupy
    with cupy.cuda.Device(device):
        module = cupy.RawModule(code=_ROWS_SOURCE)
        return module.get_function(f"softmax_rows_{'f32' if dtype == 'float32' else 'f64'}")


def softmax_rows_apply(xp, a, dim) -> bool:
    """Whether `softmax_rows` takes this case: CuPy, float32/64, C-contiguous, non-empty,
    the last dim."""
    return (xp.__name__ == "cupy" and a.dtype.name in ("float32", "float64") and a.size > 0
            and a.ndim > 0 and dim in (-1, a.ndim - 1) and a.flags.c_contiguous)


def softmax_rows(xp, a, take_log: bool):
    """softmax (or log_softmax) of `a` over its last dim, in one launch (see above)."""
    kernel = _rows_kernel(a.dtype.name, a.device.id)
    out = xp.empty_like(a)
    ncols = a.shape[-1]
    nrows = a.size // ncols
    blocks = (nrows + _ROW_WARPS - 1) // _ROW_WARPS
    kernel((blocks,), (32 * _ROW_WARPS,),
           (a, out, np.int64(nrows), np.int64(ncols), np.int32(1 if take_log else 0)))
    return out
