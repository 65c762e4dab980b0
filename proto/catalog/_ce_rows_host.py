"""cross_entropy_rows and its gradient on the host in fewer numpy calls, bit for bit the
array-module form's values (nn._ce_rows_numpy).

On a 64x10 batch each numpy call costs ~1-3 us whatever its size, and after an MLP's
matmuls have evicted the caches about three times that: the array-module form took ~15
calls plus take_along_axis's Python index building (~150 us inside a training step). Here
the log-softmax is formed only where it is read (the forward picks x[i, t_i] - max_i -
log-sum-exp_i, the same two float roundings as log_softmax's element), the one-hot is one
indexed subtraction, and ignore_index masks are skipped when no target is ignored.

The targets are in range here: the callers checked them first (targets_ok, else
targets_within, which raises on the host).
"""

from __future__ import annotations

import numpy as np

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def host_applies(xp, x) -> bool:
    """numpy, float32/float64, some elements. float16 stays with the array-module form:
    its log_softmax is PyTorch's last-dim kernel (float32 inside, float16 buffers)."""
    return xp.__name__ == "numpy" and x.dtype in _DTYPES and x.size > 0


def targets_ok(t: np.ndarray, classes: int) -> bool:
    """True when every target is a class index in [0, classes): one unsigned compare (a
    negative index views as a large one); False means the full check must look."""
    width = _UNSIGNED.get(t.dtype.itemsize)
    if width is None or t.dtype.kind not in "iu":
        return False
    return not bool((t.view(width) >= classes).any())


def _picks(t: np.ndarray, ignore_index: int, classes: int, all_classes: bool):
    """(kept rows' mask or None when every row is kept, the column picked per row: the
    target, 0 on an ignored row as the array-module form's one-hot of where(valid, t, 0)).
    all_classes: every target is known to lie in [0, classes) (targets_ok)."""
    if all_classes and not 0 <= ignore_index < classes:
        return None, t  # no target can be the ignore_index
    valid = t != ignore_index
    if valid.all():
        return None, t
    return valid, np.where(valid, t, 0)


def _row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=1, keepdims=True) from x's transpose: numpy reduces a short inner axis
    row by row (7 us on 64x10), a contiguous outer one as whole-row maxima (2.8 us with
    the copy). A max is exact and propagates NaN either way; only the sign of a zero
    maximum can differ, in a row holding both zeros, where the sum of exps is >= 2 and
    nothing downstream reads that sign."""
    return np.ascontiguousarray(x.T).max(axis=0)[:, None]


def _shifted_lse(x: np.ndarray):
    """(x's row maxima (N, 1), exp(x - max) (N, C), log(sum(exp(x - max))) (N, 1)), as
    _log_softmax_forward computes them."""
    m = _row_max(x)
    s = x - m
    np.exp(s, out=s)
    return m, s, np.log(s.sum(axis=1, keepdims=True))


def ce_rows_host(x: np.ndarray, t: np.ndarray, ignore_index: int,
                 all_classes: bool = False) -> np.ndarray:
    """-log_softmax(x)[i, t_i] per row, +0.0 on ignored rows; x (N, C) with C > 0."""
    valid, at = _picks(t, ignore_index, x.shape[1], all_classes)
    m, _, lse = _shifted_lse(x)
    rows = np.arange(x.shape[0])
    picked = x[rows, at] - m[:, 0]  # log_softmax's (x - max) - lse, element by element
    picked -= lse[:, 0]
    np.negative(picked, out=picked)
    return picked if valid is None else np.where(valid, picked, 0).astype(x.dtype, copy=False)


def ce_rows_backward_host(g: np.ndarray, x: np.ndarray, t: np.ndarray, ignore_index: int,
                          all_classes: bool = False) -> np.ndarray:
    """(softmax(x) - onehot(t)) * g[:, None], g zeroed on ignored rows."""
    valid, at = _picks(t, ignore_index, x.shape[1], all_classes)
    m, s, lse = _shifted_lse(x)
    np.subtract(x, m, out=s)  # log_softmax: (x - max) - lse, then exp for the softmax
    s -= lse
    np.exp(s, out=s)
    s[np.arange(x.shape[0]), at] -= 1  # p - onehot: only the picked column changes
    s *= (g if valid is None else np.where(valid, g, 0))[:, None]
    return s.astype(x.dtype, copy=False)
