"""Errors only the values can cause (integer division by zero, an index out of range):
raised as PyTorch raises them on numpy, and on a device deferred to one check when the
results come back (proto/catalog/_checks.py). The device path is exercised here on the
CPU through a module that is numpy under another name, so the engine takes it for a
device: its checks queue flags instead of raising at the op."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from remotegrad.proto.catalog import _checks as checks
from remotegrad.worker.engine import Graph, compile_graph

# numpy warns where a device computes quietly; the values are not what is checked here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
DEVICE_LIKE = types.ModuleType("devicelike")  # numpy under another name (see module doc)
DEVICE_LIKE.__getattr__ = lambda name: getattr(np, name)


def _run(xp, op, a, b, attrs=None, fold=False):
    g = Graph()
    if fold:  # small constant graphs are computed at compile time
        ids = [g.add("full", (), {"shape": np.shape(v), "value": int(np.ravel(v)[0]),
                                  "dtype": "int64"}) for v in (a, b)]
    else:
        ids = [g.add("leaf", (), {"hash": f"h{k}", "dtype": v.dtype.name,
                                  "shape": tuple(v.shape)}) for k, v in enumerate((a, b))]
    out = g.add(op, ids, attrs or {})
    prog = compile_graph(g, [out], xp)
    return prog.run([a, b][: len(prog.leaves)])[0]


INT_DIVISIONS = [("div", {"rounding_mode": "floor"}, lambda a, b: torch.div(a, b, rounding_mode="floor")),
                 ("div", {"rounding_mode": "trunc"}, lambda a, b: torch.div(a, b, rounding_mode="trunc")),
                 ("remainder", {}, torch.remainder),
                 ("fmod", {}, torch.fmod)]


@pytest.mark.parametrize("xp", [np, DEVICE_LIKE], ids=["numpy", "device-like"])
@pytest.mark.parametrize("op,attrs,ref", INT_DIVISIONS,
                         ids=[f"{o}-{a.get('rounding_mode', '')}" for o, a, _ in INT_DIVISIONS])
def test_integer_division_by_zero_raises_as_pytorch(xp, op, attrs, ref):
    a, b = np.array([5, -3, 7]), np.array([2, 0, -2])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        ref(torch.from_numpy(a), torch.from_numpy(b))
    with pytest.raises(ZeroDivisionError, match="ZeroDivisionError"):
        _run(xp, op, a, b, attrs)
    with pytest.raises(ZeroDivisionError):  # folded at compile time: the same error
        _run(xp, op, np.array([4]), np.array([0]), attrs, fold=True)
    ok = np.array([2, 1, -2])  # a nonzero divisor still divides, on either path
    want = ref(torch.from_numpy(a), torch.from_numpy(ok)).numpy()
    np.testing.assert_array_equal(_run(xp, op, a, ok, attrs), want)


@pytest.mark.parametrize("op,attrs", [("div", {"rounding_mode": "floor"}), ("remainder", {}),
                                      ("fmod", {}), ("div", {})])
def test_float_division_by_zero_is_a_value(op, attrs):
    a, b = np.array([1.0, -1.0, 0.0]), np.array([0.0, 0.0, 0.0])
    ref = {"div": lambda x, y: torch.div(x, y, **attrs), "remainder": torch.remainder,
           "fmod": torch.fmod}[op]
    want = ref(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_array_equal(_run(np, op, a, b, attrs), want)


def test_device_checks_wait_for_the_end_of_the_run():
    """Inside a run on a device, a failed check raises nothing until the run settles, and
    then the first failure is the one raised; on numpy it raises at once."""
    bad = np.array([False, True])
    with pytest.raises(IndexError, match="first"):
        with checks.deferred(DEVICE_LIKE):
            checks.fail_if(DEVICE_LIKE, bad, IndexError, "first")
            checks.fail_if(DEVICE_LIKE, bad, ValueError, "second")
            reached = True
    assert reached
    with checks.deferred(DEVICE_LIKE):  # nothing failed: nothing raised
        checks.fail_if(DEVICE_LIKE, ~np.array([True, True]), IndexError, "never")
    with pytest.raises(IndexError, match="now"):
        with checks.deferred(np):
            checks.fail_if(np, bad, IndexError, "now")
            pytest.fail("numpy checks raise at the op")
