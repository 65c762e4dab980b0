"""An independent check of every derivative rule: central finite differences in float64
along random directions, for first and second order (no PyTorch involved)."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import catalog

from .helpers import CORRELATED as CORRELATED_FORMS
from .helpers import Case, grad_indices, tied_inputs

pytestmark = pytest.mark.usefixtures("backend")  # numpy, and cupy where a GPU is

EPS = 1e-6
CASES = [(name, i) for name in sorted(catalog.CATALOG) if name not in catalog.SOURCES
         for i, s in enumerate(catalog.get(name).samples)
         if s.fd and catalog.get(name).differentiable]


def _dot(a, b) -> float:
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def _shifted(case: Case, direction, sign):
    xs = list(case.inputs)
    for i, d in zip(case.wrt, direction):
        xs[i] = np.asarray(xs[i] + sign * EPS * d)
    return xs


CORRELATED = [(name, i, form) for name, i in CASES for form in CORRELATED_FORMS
              if len(tied_inputs(grad_indices(catalog.get(name), catalog.get(name).samples[i]),
                                 form))]


@pytest.mark.parametrize("name,index,form", [(n, i, None) for n, i in CASES] + CORRELATED,
                         ids=[f"{n}-{i}" for n, i in CASES]
                         + [f"{n}-{i}-{f}" for n, i, f in CORRELATED])
def test_derivatives_match_finite_differences(name, index, form):
    """Each sample as given, and in its correlated forms (one input an ancestor of
    another: see helpers.tied_inputs)."""
    case = Case(name, catalog.get(name).samples[index], "float64", seed=100 + index,
                correlate=form)
    if not case.first:
        pytest.skip("output is not floating point")
    rng = np.random.default_rng(index)
    direction = [rng.standard_normal(np.shape(case.inputs[i])) for i in case.wrt]
    _, first, second = case.engine()
    plus = case.engine(_shifted(case, direction, 1))
    minus = case.engine(_shifted(case, direction, -1))

    # First order: d/dt <seed, f(x + t v)> = sum_i <grad_i, v_i>.
    numeric = (_dot(case.seed, plus[0]) - _dot(case.seed, minus[0])) / (2 * EPS)
    analytic = sum(_dot(g, d) for g, d in zip(first, direction))
    assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-6), f"{name}: first order"

    # Second order: d/dt sum_i <grad_i(x + t v), u_i> = sum_j <second_j, v_j>.
    if case.vs is not None:
        numeric2 = (sum(_dot(g, u) for g, u in zip(plus[1], case.vs))
                    - sum(_dot(g, u) for g, u in zip(minus[1], case.vs))) / (2 * EPS)
        analytic2 = sum(_dot(s, d) for s, d in zip(second, direction))
        assert numeric2 == pytest.approx(analytic2, rel=1e-5, abs=1e-6), f"{name}: second order"
