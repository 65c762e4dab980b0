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


def _div(mode):
    return lambda a, b: torch.div(a, b, rounding_mode=mode)


INT_DIVISIONS = [("div", {"rounding_mode": "floor"}, _div("floor")),
                 ("div", {"rounding_mode": "trunc"}, _div("trunc")),
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


X = np.arange(12.0).reshape(3, 4)
# (name, op, inputs, attrs, PyTorch's call on the same tensors). Negative indices where
# PyTorch refuses them: numpy (like a device) would quietly count them from the end.
BAD_INDICES = [
    ("index_select", "index_select", [X, np.array([5])], {"dim": 0},
     lambda x, i: x.index_select(0, i)),
    ("index_select-neg", "index_select", [X, np.array([-1])], {"dim": 0},
     lambda x, i: x.index_select(0, i)),
    ("gather", "gather", [X, np.array([[4], [0], [0]])], {"dim": 1}, lambda x, i: x.gather(1, i)),
    ("gather-neg", "gather", [X, np.array([[-1], [0], [0]])], {"dim": 1},
     lambda x, i: x.gather(1, i)),
    ("scatter_add-neg", "scatter_add", [X, np.array([[-1], [0], [0]]), np.ones((3, 1))],
     {"dim": 1}, lambda x, i, s: x.scatter_add(1, i, s)),
    ("index_add-neg", "index_add", [X, np.array([-1]), np.ones((1, 4))], {"dim": 0},
     lambda x, i, s: x.index_add(0, i, s)),
    ("index", "index", [X, np.array([3])], {"key": "T"}, lambda x, i: x[i]),
    ("index-2nd", "index", [X, np.array([0]), np.array([-5])], {"key": "T,T"},
     lambda x, i, j: x[i, j]),
    ("embedding-neg", "embedding", [np.array([-1]), X], {}, torch.nn.functional.embedding),
    ("cross_entropy", "cross_entropy", [X, np.array([0, 4, 1])], {},
     torch.nn.functional.cross_entropy),
    ("cross_entropy-neg", "cross_entropy", [X, np.array([0, -2, 1])], {},
     torch.nn.functional.cross_entropy),
    ("cross_entropy-3d", "cross_entropy", [X.reshape(1, 3, 4), np.array([[0, 3, 1, 1]])], {},
     torch.nn.functional.cross_entropy),
    ("nll_loss", "nll_loss", [X, np.array([0, 4, 1])], {}, torch.nn.functional.nll_loss),
    ("nll_loss-weight", "nll_loss", [X, np.array([0, 9, 1]), np.ones(4)], {},
     torch.nn.functional.nll_loss),
]
# The cases whose bad index numpy itself accepts (the device-like module is numpy): only
# the deferred check can catch them there, as on a real device.
QUIET_ON_NUMPY = [c for c in BAD_INDICES if "neg" in c[0]
                  or c[0] in ("cross_entropy", "cross_entropy-3d", "nll_loss")]


def _run_many(xp, op, arrays, attrs):
    g = Graph()
    ids = [g.add("leaf", (), {"hash": f"h{k}", "dtype": a.dtype.name, "shape": a.shape})
           for k, a in enumerate(arrays)]
    out = g.add(op, ids, attrs)
    targets = [out]
    if g.metas[ids[0]].dtype == "float64" and op != "embedding":
        seed = g.add("full", (), {"shape": g.metas[out].shape, "value": 1.0,
                                  "dtype": "float64"})
        targets.append(g.add("grad", (out, seed, ids[0]), {"n": 1}))  # its backward too
    prog = compile_graph(g, targets, xp)
    return prog.run([arrays[int(h[1:])] for h in prog.leaf_hashes])


def _torch_error(ref, arrays):
    with pytest.raises(Exception) as info:
        ref(*(torch.from_numpy(a) for a in arrays))
    return info.type, str(info.value).splitlines()[0]


@pytest.mark.parametrize("case", BAD_INDICES, ids=[c[0] for c in BAD_INDICES])
def test_bad_indices_raise_pytorchs_error(case):
    _, op, arrays, attrs, ref = case
    kind, message = _torch_error(ref, arrays)
    with pytest.raises(kind) as info:
        _run_many(np, op, arrays, attrs)
    assert str(info.value) == message
    if kind is RuntimeError:  # raised on purpose: the worker tells it from a bug
        assert info.type is checks.CheckedRuntimeError


@pytest.mark.parametrize("case", QUIET_ON_NUMPY, ids=[c[0] for c in QUIET_ON_NUMPY])
def test_bad_indices_a_device_would_accept_fail_when_the_run_settles(case):
    _, op, arrays, attrs, ref = case
    kind, message = _torch_error(ref, arrays)
    with pytest.raises(kind, match=message.replace("(", r"\(").replace(")", r"\)")):
        _run_many(DEVICE_LIKE, op, arrays, attrs)


def test_good_indices_pass_on_both_paths():
    i = np.array([[3], [0], [-0]])
    for xp in (np, DEVICE_LIKE):
        (got, grad) = _run_many(xp, "gather", [X, i], {"dim": 1})
        np.testing.assert_array_equal(got, torch.from_numpy(X).gather(1, torch.from_numpy(i)))
        assert grad.shape == X.shape


@pytest.mark.parametrize("case", BAD_INDICES, ids=[c[0] for c in BAD_INDICES])
def test_bad_indices_on_each_backend(backend, case):
    """On the engine tests' backends: numpy here, and CuPy on a GPU machine (where the
    kernels wrap bad indices, so only the settled check stops a wrong value)."""
    from . import helpers
    from .backends import to_device
    _, op, arrays, attrs, ref = case
    kind, message = _torch_error(ref, arrays)
    with pytest.raises(kind) as info:
        _run_many(helpers.XP, op, [to_device(helpers.XP, a) for a in arrays], attrs)
    assert str(info.value) == message
