"""x ** k for a whole 4 <= k <= 16 on numpy (catalog/_int_power): the correctly rounded
value wherever the exact products are used (checked against Python's exact Fraction
arithmetic, whose float() rounds correctly), numpy's power for the special values and the
ranges left to it, at least as close to PyTorch as numpy's power was."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from remotegrad.proto.catalog import get
from remotegrad.proto.catalog._int_power import MIN_SIZE, int_power, whole_exponent

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e300, 1e-300, -1e-300, 5e-324,
           1e77, -1e-77, 2.0 ** 200, 1.0, -1.0]


def _values(dtype) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = np.concatenate([np.linspace(-np.pi, np.pi, 400), rng.standard_normal(400) * 3,
                        10.0 ** rng.uniform(-30, 30, 400) * np.sign(rng.standard_normal(400))])
    return x.astype(dtype)


def _exact(x: np.ndarray, k: int) -> np.ndarray:
    def rounded(v) -> float:
        exact = Fraction(float(v)) ** k
        try:
            return float(exact)
        except OverflowError:
            return float("inf") if exact > 0 else float("-inf")
    with np.errstate(over="ignore"):
        return np.array([rounded(v) for v in x]).astype(x.dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("k", [4, 5, 7, 16])
def test_correctly_rounded(dtype, k):
    x = _values(dtype)
    with np.errstate(over="ignore", under="ignore"):
        got = int_power(x, k)
        old = np.power(x, x.dtype.type(k))
    exact = _exact(x, k)
    normal = (np.abs(exact) >= np.finfo(dtype).tiny) & np.isfinite(exact)
    if dtype == "float64":
        normal &= (np.abs(exact) >= 2.0 ** -900) & (np.abs(exact) <= 2.0 ** 990)
    assert normal.sum() > 800
    assert np.array_equal(got[normal], exact[normal])  # numpy's power misses a few percent
    assert np.array_equal(got[~normal], old[~normal], equal_nan=True)
    # as close to PyTorch (whose kernel is a vectorised pow, not exact) as numpy's was
    want = torch.pow(torch.from_numpy(x), k).numpy()
    assert (got == want).sum() >= (old == want).sum()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_special_values_are_numpys(dtype):
    x = np.resize(np.array(SPECIAL, dtype), 4 * len(SPECIAL))
    for k in (4, 5, 16):
        with np.errstate(all="ignore"):
            got, want = int_power(x, k), np.power(x, x.dtype.type(k))
        assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(want))


def test_which_exponents():
    x = np.ones(MIN_SIZE)
    assert whole_exponent(x, np.array(4.0)) == 4
    assert whole_exponent(x, np.array(16.0)) == 16
    for b in (np.array(3.0), np.array(17.0), np.array(4.5), np.array(-4.0),
              np.array(np.nan), np.ones(MIN_SIZE) * 4, np.array(4.0, np.float32)):
        assert whole_exponent(x, b) is None
    assert whole_exponent(np.ones(MIN_SIZE - 1), np.array(4.0)) is None  # numpy's power
    assert whole_exponent(np.ones(MIN_SIZE, np.int64), np.array(4)) is None


def test_pow_forward_uses_it():
    x = _values("float64")
    out = get("pow").forward(np, x, np.array(5.0))
    assert np.array_equal(out, int_power(x, 5))
