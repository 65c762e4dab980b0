"""The host forms of cross_entropy_rows and its gradient (catalog/_ce_rows_host.py) give the
array-module form's bits (nn._ce_rows_numpy, which the catalog's tests compare with PyTorch):
dtypes, target dtypes, ignored rows, NaN, inf, zeros of both signs, and out-of-range targets
still raise PyTorch's IndexError."""

import numpy as np
import pytest

from remotegrad.proto.catalog import nn as N


def _same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _case(rng, trial):
    dt = (np.float32, np.float64, np.float16)[trial % 3]
    n, c = int(rng.integers(1, 40)), int(rng.integers(1, 13))
    x = (rng.standard_normal((n, c)) * (1, 10, 100, 1e-3)[trial % 4]).astype(dt)
    if trial % 5 == 0:
        x[0, 0] = np.inf
    if trial % 7 == 0:
        x[-1, -1] = np.nan
    if trial % 11 == 0 and c > 1:
        x[0, 0], x[0, 1], x[0, 2:] = 0.0, -0.0, -np.inf
    if trial % 13 == 0:
        x[:, 0], x[:, 1:] = -0.0, -1e4
    ii = (-100, -1, 0, 2)[trial % 4]
    tdt = (np.int64, np.int32, np.uint8)[trial % 3] if ii >= 0 else np.int64
    t = rng.integers(-1 if ii == -1 else 0, c, n).astype(tdt)
    g = rng.standard_normal(n).astype(dt)
    g[0] = -0.0 if trial % 2 else g[0]
    return x, t, g, ii


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_host_forms_are_the_array_module_forms_bits():
    rng = np.random.default_rng(0)
    for trial in range(600):
        x, t, g, ii = _case(rng, trial)
        assert _same(N._ce_rows_forward(np, x, t, ii), N._ce_rows_numpy(np, x, t, ii))
        assert _same(N._ce_rows_bw_forward(np, g, x, t, ii),
                     N._ce_rows_numpy(np, x, t, ii, g))


@pytest.mark.parametrize("targets", [[0, 5], [-3, 0], [4, 1]])
def test_out_of_range_targets_raise(targets):
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(IndexError, match=f"Target {targets[0] if targets[0] else targets[1]} "
                                         "is out of bounds"):
        N._ce_rows_forward(np, x, np.array(targets), -100)
