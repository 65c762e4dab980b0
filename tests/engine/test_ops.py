"""Every catalog op against PyTorch: forward, first- and second-order gradients (through
`grad` nodes lowered by the engine), on each op's OpInfo-style samples (0-d, size-1
broadcasting, size-0, non-contiguous inputs), in float64 and in float32."""

from __future__ import annotations

import pytest

from remotegrad.proto import catalog

from .helpers import Case, check_against_torch

OPS = sorted(n for n in catalog.CATALOG if n not in catalog.SOURCES)
CASES = [(name, i) for name in OPS for i in range(len(catalog.get(name).samples))]


def test_every_op_has_samples():
    missing = [n for n in OPS if not catalog.get(n).samples]
    assert not missing, f"ops without samples: {missing}"


def test_non_differentiable_ops_are_listed():
    undeclared = {n for n in catalog.CATALOG if not catalog.get(n).differentiable}
    assert undeclared == catalog.NON_DIFFERENTIABLE - {"detach"} | (
        undeclared & {"detach"}), sorted(undeclared ^ catalog.NON_DIFFERENTIABLE)


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
@pytest.mark.parametrize("dtype,noncontig", [("float64", False), ("float32", True)],
                         ids=["f64", "f32-strided"])
def test_op_matches_torch(name, index, dtype, noncontig):
    sample = catalog.get(name).samples[index]
    check_against_torch(Case(name, sample, dtype, seed=index, noncontig=noncontig))
