"""Every catalog op against PyTorch: forward, first- and second-order gradients (through
`grad` nodes lowered by the engine), on each op's OpInfo-style samples (0-d, size-1
broadcasting, size-0, non-contiguous inputs), in float64 and in float32."""

from __future__ import annotations

import pytest

from remotegrad.proto import catalog

from .helpers import Case, check_against_torch

# PyTorch's own note about its implementation of padding="same"; not about our values.
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same'"),
              # PyTorch's warning when mse_loss/l1_loss broadcast (samples that do so)
              pytest.mark.filterwarnings("ignore:Using a target size"),
              pytest.mark.usefixtures("backend")]  # numpy, and cupy where a GPU is
OPS = sorted(n for n in catalog.CATALOG if n not in catalog.SOURCES)
CASES = [(name, i) for name in OPS for i in range(len(catalog.get(name).samples))]


def test_every_op_has_samples():
    missing = [n for n in OPS if not catalog.get(n).samples]
    assert not missing, f"ops without samples: {missing}"


def test_non_differentiable_ops_are_listed():
    without_rules = {n for n in catalog.CATALOG if not catalog.get(n).differentiable}
    assert without_rules == catalog.NON_DIFFERENTIABLE, sorted(
        without_rules ^ catalog.NON_DIFFERENTIABLE)


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
@pytest.mark.parametrize("dtype,noncontig", [("float64", False), ("float32", True)],
                         ids=["f64", "f32-strided"])
def test_op_matches_torch(name, index, dtype, noncontig):
    sample = catalog.get(name).samples[index]
    check_against_torch(Case(name, sample, dtype, seed=index, noncontig=noncontig))


def _multi_input(name, sample) -> bool:
    case_wrt = [i for i, s in enumerate(sample.inputs) if s.kind in ("float", "fixed")]
    wrt = sample.grad if sample.grad is not None else case_wrt
    return catalog.get(name).differentiable and len(wrt) >= 2


CORRELATED = [(name, i, form) for name, i in CASES
              if _multi_input(name, catalog.get(name).samples[i]) for form in ("first", "last")]


@pytest.mark.parametrize("name,index,form", CORRELATED,
                         ids=[f"{n}-{i}-{f}" for n, i, f in CORRELATED])
def test_correlated_inputs_match_torch(name, index, form):
    """op(x, f(x)): one input an ancestor of another, first and second order. Rules (and
    decompositions) must give partial derivatives per argument; the sweep sums them."""
    sample = catalog.get(name).samples[index]
    check_against_torch(Case(name, sample, "float64", seed=index, correlate=form))


def _one_differentiable_input(name) -> bool:
    """Ops with several float inputs of which PyTorch differentiates only one say so in
    their samples (grad= names that one everywhere): nll_loss's weight (PyTorch refuses
    one that requires grad), max_pool2d_backward/select's input (it only picks each
    window's argmax, piecewise constant)."""
    return all(s.grad is not None and len(s.grad) == 1 for s in catalog.get(name).samples)


def _float_positions(name) -> set[int]:
    return {i for s in catalog.get(name).samples for i, spec in enumerate(s.inputs)
            if spec.kind in ("float", "fixed")}


def test_every_multi_input_op_has_a_correlated_form():
    multi = {n for n in OPS if catalog.get(n).differentiable and len(_float_positions(n)) >= 2
             and not _one_differentiable_input(n)}
    covered = {n for n, _, _ in CORRELATED}
    assert multi <= covered, f"multi-input ops never checked with shared ancestry: " \
                             f"{sorted(multi - covered)}"


def _aliasable(name):
    """(sample index, i, j): two float inputs of one shape, to pass the same tensor twice."""
    for k, s in enumerate(catalog.get(name).samples):
        floats = [i for i, spec in enumerate(s.inputs) if spec.kind == "float"]
        for a in floats:
            for b in floats:
                if a < b and s.inputs[a].shape == s.inputs[b].shape:
                    return k, a, b
    return None


ALIASED = [(n, *_aliasable(n)) for n in OPS
           if catalog.get(n).differentiable and _aliasable(n) is not None]


@pytest.mark.parametrize("name,index,a,b", ALIASED, ids=[c[0] for c in ALIASED])
def test_same_tensor_in_two_places(name, index, a, b):
    """Rules are partial derivatives per argument: f(x, x) must sum both."""
    import numpy as np
    import torch

    from .helpers import EngineGraph, assert_close
    from .torch_refs import reference
    sample = catalog.get(name).samples[index]
    case = Case(name, sample, "float64", seed=index, second=False)
    values = list(case.inputs)
    values[b] = values[a]
    eg = EngineGraph()
    ids = [eg.input(v) for v in values]
    ids[b] = ids[a]
    out = eg.g.add(name, ids, sample.attrs)
    seed = np.random.default_rng(1).standard_normal(eg.g.metas[out].shape)
    gid = eg.g.add("grad", (out, eg.leaf(seed), ids[a]), {"n": 1})
    (got,) = eg.compile([gid]).run()
    ts = [v if isinstance(v, (bool, int, float)) else torch.from_numpy(np.array(v))
          for v in values]
    ts[a] = ts[a].requires_grad_(True)
    ts[b] = ts[a]
    res = reference(name)(*ts, **catalog.get(name).check_attrs(sample.attrs))
    (want,) = torch.autograd.grad(res, ts[a], torch.from_numpy(seed))
    assert_close(got, want, {"rtol": 1e-7, "atol": 1e-9}, f"{name}({a} = {b}): backward")
