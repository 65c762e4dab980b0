"""Hypothesis over shapes: broadcasting and reduction rules (shape inference, values and
gradients) agree with PyTorch for any shapes, not only the samples."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remotegrad.proto.catalog import Sample
from remotegrad.proto.catalog._registry import In

from .helpers import Case, check_against_torch

SETTINGS = settings(max_examples=40, deadline=None,
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
