"""Hypothesis over shapes: broadcasting and reduction rules (shape inference, values and
gradients) agree with PyTorch for any shapes, not only the samples."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remotegrad.proto.catalog import Sample
from remotegrad.proto.catalog._registry import In

from .helpers import Case, check_against_torch

pytestmark = pytest.mark.usefixtures("backend")  # numpy, and cupy where a GPU is

# Fixed examples in CI (derandomize); HYPOTHESIS_EXAMPLES=2000 explores further by hand.
SETTINGS = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 60)),
                    deadline=None, derandomize="HYPOTHESIS_EXAMPLES" not in os.environ,
                    suppress_health_check=[HealthCheck.too_slow])
dims = st.integers(0, 3)


@st.composite
def broadcastable_pair(draw):
    """Two shapes that broadcast: a common shape, each side drops leading dims and turns
    some sizes into 1."""
    base = draw(st.lists(dims, min_size=0, max_size=4))
    def side():
        drop = draw(st.integers(0, len(base)))
        return tuple(1 if draw(st.booleans()) else s for s in base[drop:])
    return side(), side()


@given(broadcastable_pair(), st.sampled_from(["add", "sub", "mul", "maximum", "div"]),
       st.sampled_from(["float32", "float64"]))
@SETTINGS
def test_binary_broadcasting(shapes, op, dtype):
    a, b = shapes
    hi = (0.5, 2.0) if op == "div" else (-2.0, 2.0)
    sample = Sample((In(a), In(b, "float", *hi)))
    check_against_torch(Case(op, sample, dtype))


@given(broadcastable_pair())
@SETTINGS
def test_where_broadcasts_three_ways(shapes):
    a, b = shapes
    sample = Sample((In(a, "bool"), In(b), In(a)))
    check_against_torch(Case("where", sample, "float64"))


@st.composite
def shape_and_dims(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    picked = draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=len(shape),
                           unique_by=lambda d: d % len(shape)))
    dim = None if not picked else tuple(picked)
    return shape, dim


@given(shape_and_dims(), st.booleans(), st.sampled_from(["sum", "mean", "amax", "var", "norm",
                                                         "logsumexp"]))
@SETTINGS
def test_reductions_over_any_dims(shape_dim, keepdim, op):
    shape, dim = shape_dim
    if op == "logsumexp" and dim is None:
        dim = tuple(range(len(shape)))
    if op == "var" and int(np.prod([shape[d] for d in (dim or range(len(shape)))])) < 2:
        dim = None if np.prod(shape) > 1 else dim
        if np.prod(shape) < 2:
            return
    sample = Sample((In(shape),), {"dim": dim, "keepdim": keepdim})
    check_against_torch(Case(op, sample, "float64"))


@given(shape_and_dims(), st.booleans())
@SETTINGS
def test_reduced_shape_matches_torch(shape_dim, keepdim):
    shape, dim = shape_dim
    from remotegrad.proto.catalog.reductions import reduced_shape
    t = torch.zeros(shape).sum(dim=dim if dim is not None else tuple(range(len(shape))),
                               keepdim=keepdim)
    assert reduced_shape(shape, dim, keepdim) == tuple(t.shape)


_UNARY = ["exp", "tanh", "neg", "sin", "abs", "sigmoid", "relu"]
_BINARY = ["add", "mul", "sub", "maximum"]
_VIEWS = [("transpose", {"dim0": 0, "dim1": 1}), ("reshape", {"shape": (3, 2)}),
          ("expand", {"shape": (2, 2, 3)})]


@st.composite
def random_program(draw):
    """A random DAG of elementwise ops and views over two (2, 3) leaves; some nodes are
    targets. Exercises buffer reuse in the generated code: a wrong reuse shows as a
    value that differs between runs or from a plain numpy evaluation."""
    steps = []
    count = draw(st.integers(3, 25))
    for _ in range(count):
        kind = draw(st.sampled_from(["u", "b", "v"]))
        k = len(steps) + 2
        if kind == "u":
            steps.append((draw(st.sampled_from(_UNARY)), (draw(st.integers(0, k - 1)),), {}))
        elif kind == "b":
            steps.append((draw(st.sampled_from(_BINARY)),
                          (draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))), {}))
        else:
            op, attrs = draw(st.sampled_from(_VIEWS))
            steps.append((op, (draw(st.integers(0, k - 1)),), attrs))
    targets = draw(st.lists(st.integers(2, count + 1), min_size=1, max_size=4))
    return steps, targets


_NP = {"exp": np.exp, "tanh": np.tanh, "neg": np.negative, "sin": np.sin, "abs": np.abs,
       "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "relu": lambda a: np.maximum(a, 0),
       "add": np.add, "mul": np.multiply, "sub": np.subtract, "maximum": np.maximum}


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
@given(program=random_program())
@SETTINGS
def test_generated_code_and_buffer_reuse_match_a_plain_evaluation(program, fuse):
    from remotegrad.proto.catalog import OpError

    from .backends import to_host
    from .helpers import EngineGraph
    steps, targets = program
    rng = np.random.default_rng(0)
    leaves = [rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (2, 3))]
    eg = EngineGraph()
    ids = [eg.leaf(a.copy()) for a in leaves]
    ref = [a.copy() for a in leaves]
    for op, ins, attrs in steps:
        try:
            ids.append(eg.g.add(op, tuple(ids[i] for i in ins), attrs))
        except OpError:  # shapes that do not fit (a view of a view): keep the input
            ids.append(ids[ins[0]])
            ref.append(ref[ins[0]])
            continue
        args = [ref[i] for i in ins]
        if op in _NP:
            ref.append(_NP[op](*args))
        elif op == "transpose":
            ref.append(np.swapaxes(args[0], 0, 1))
        else:
            ref.append(np.reshape(args[0], attrs["shape"]) if op == "reshape"
                       else np.broadcast_to(args[0], attrs["shape"]))
    eg.compile([ids[t] for t in targets], fuse)
    for _ in range(3):  # the checked run, then the generated code twice
        for got, t in zip(eg.run(), targets):
            np.testing.assert_allclose(got, ref[t], rtol=1e-12, atol=1e-14)
    for a, b in zip(eg.device.values(), leaves):  # leaves untouched (on the device too)
        np.testing.assert_array_equal(to_host(a), b)
