"""CUDA kernels the worker's engine launches on CuPy for a few catalog ops, where the
array-module form costs several launches: row-wise (log-)softmax over the last dim and
cross-entropy rows (forward and gradient). Registered into the catalog's
`_special.DEVICE` when the engine is imported (the catalog itself holds no CUDA source;
without these every op takes its array-module form, as on numpy).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from remotegrad.proto.catalog import _special

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
/* A row's max (NaN if any element is: fmax skips NaN, numpy's max does not) and the sum
   of exp(x - max), shared by the warp. */
template <typename T>
__device__ void row_stats(const T* xr, long long ncols, int lane, T* m_out, T* s_out) {
    T m = neg_inf(T(0));
    int nan = 0;
    for (long long j = lane; j < ncols; j += 32) { m = fmax(m, xr[j]); nan |= isnan(xr[j]); }
    m = warp_max(m);
    if (__any_sync(0xffffffffu, nan)) m = quiet_nan(T(0));
    T s = 0;
    for (long long j = lane; j < ncols; j += 32) s += exp(xr[j] - m);
    *m_out = m;
    *s_out = warp_sum(s);
}
#define ROW_SETUP \
    long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; \
    int lane = threadIdx.x % 32; \
    if (row >= nrows) return;  /* a whole warp leaves together: shuffles stay full */ \
    const T* xr = x + row * ncols; \
    T m, s; \
    row_stats(xr, ncols, lane, &m, &s);
template <typename T>
__device__ void rows(const T* x, T* y, long long nrows, long long ncols, int take_log) {
    ROW_SETUP
    T* yr = y + row * ncols;
    if (take_log) {
        T lse = log(s);
        for (long long j = lane; j < ncols; j += 32) yr[j] = (xr[j] - m) - lse;
    } else {
        for (long long j = lane; j < ncols; j += 32) yr[j] = exp(xr[j] - m) / s;
    }
}
/* Cross-entropy of each row against its class index: logsumexp - x[target]; 0 where the
   target is ignore_index, NaN where it is out of range (no device-side raise). */
template <typename T>
__device__ void ce_rows(const T* x, const long long* t, T* loss, long long nrows,
                        long long ncols, long long ignore) {
    ROW_SETUP
    long long k = t[row];
    if (lane != 0) return;
    if (k == ignore) loss[row] = T(0);
    else if (k < 0 || k >= ncols) loss[row] = quiet_nan(T(0));
    else loss[row] = -((xr[k] - m) - log(s));  /* -logp[t], PyTorch's (-0.0 of one class) */
}
/* Its gradient: g[row] * (softmax(x) - onehot(target)); 0 rows where ignored. */
template <typename T>
__device__ void ce_rows_bw(const T* g, const T* x, const long long* t, T* out,
                           long long nrows, long long ncols, long long ignore) {
    ROW_SETUP
    long long k = t[row];
    T gi = k == ignore ? T(0) : g[row];
    bool bad = k != ignore && (k < 0 || k >= ncols);
    T* orow = out + row * ncols;
    for (long long j = lane; j < ncols; j += 32)
        orow[j] = bad ? quiet_nan(T(0)) : gi * (exp(xr[j] - m) / s - (j == k ? T(1) : T(0)));
}
extern "C" __global__ void ce_rows_f32(const float* x, const long long* t, float* y,
    long long r, long long c, long long i) { ce_rows<float>(x, t, y, r, c, i); }
extern "C" __global__ void ce_rows_f64(const double* x, const long long* t, double* y,
    long long r, long long c, long long i) { ce_rows<double>(x, t, y, r, c, i); }
extern "C" __global__ void ce_rows_bw_f32(const float* g, const float* x, const long long* t,
    float* y, long long r, long long c, long long i) { ce_rows_bw<float>(g, x, t, y, r, c, i); }
extern "C" __global__ void ce_rows_bw_f64(const double* g, const double* x,
    const long long* t, double* y, long long r, long long c, long long i) {
    ce_rows_bw<double>(g, x, t, y, r, c, i); }
extern "C" __global__ void softmax_rows_f32(const float* x, float* y, long long r,
                                            long long c, int l) { rows<float>(x, y, r, c, l); }
extern "C" __global__ void softmax_rows_f64(const double* x, double* y, long long r,
                                            long long c, int l) { rows<double>(x, y, r, c, l); }
"""
_ROW_WARPS = 8  # rows per block


@cache
def _rows_kernel(name: str, dtype: str, device: int):
    """Kernel `name` for `dtype` on `device`, looked up once (a lookup per call cost more
    host time than the launch)."""
    import cupy
    with cupy.cuda.Device(device):
        module = cupy.RawModule(code=_ROWS_SOURCE)
        return module.get_function(f"{name}_{'f32' if dtype == 'float32' else 'f64'}")


def softmax_rows(xp, a, take_log: bool):
    """softmax (or log_softmax) of `a` over its last dim, in one launch (see above)."""
    out = xp.empty_like(a)
    nrows = a.size // a.shape[-1]
    _rows_kernel("softmax_rows", a.dtype.name, a.device.id)(
        ((nrows + _ROW_WARPS - 1) // _ROW_WARPS,), (32 * _ROW_WARPS,),
        (a, out, np.int64(nrows), np.int64(a.shape[-1]), np.int32(1 if take_log else 0)))
    return out


def ce_rows(xp, x, t, ignore_index: int, g=None):
    """Per-row cross-entropy of x (N, C) against int targets t (N,), in one launch; with
    `g` (N,), its gradient g[:, None] * (softmax(x) - onehot(t)) instead."""
    t = xp.ascontiguousarray(t, dtype=np.int64)
    nrows, ncols = x.shape
    grid, block = ((nrows + _ROW_WARPS - 1) // _ROW_WARPS,), (32 * _ROW_WARPS,)
    sizes = (np.int64(nrows), np.int64(ncols), np.int64(ignore_index))
    if g is None:
        out = xp.empty(nrows, x.dtype)
        _rows_kernel("ce_rows", x.dtype.name, x.device.id)(grid, block, (x, t, out, *sizes))
    else:
        out = xp.empty_like(x)
        g = xp.ascontiguousarray(g, dtype=x.dtype)
        _rows_kernel("ce_rows_bw", x.dtype.name, x.device.id)(
            grid, block, (g, x, t, out, *sizes))
    return out


_special.DEVICE.update(softmax_rows=softmax_rows, ce_rows=ce_rows)
