"""The same random programs as test_differential.py, through a real local cluster: redis-server,
a gateway and two workers started as processes on loopback (the `cluster` fixture of
tests/conftest.py). Fewer programs: each value read is a gRPC round trip. Each program also
runs embedded (`connect("local")`): every error must have the same class both ways.

    pytest -m integration tests/differential
    REMOTEGRAD_DIFF_CLUSTER_EXAMPLES=400 pytest -m integration tests/differential
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from difftest import check, programs, raised_classes

pytestmark = pytest.mark.integration

N = int(os.environ.get("REMOTEGRAD_DIFF_CLUSTER_EXAMPLES") or 40)


@pytest.fixture(scope="module")
def through_cluster(cluster):
    import remotegrad as rg
    yield cluster
    rg.connect("local")


@settings(max_examples=N, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck), print_blob=False)
@given(prog=programs())
def test_programs_through_cluster_match_pytorch(through_cluster, prog):
    import remotegrad as rg
    rg.connect("local")
    embedded = raised_classes(prog)
    rg.connect(through_cluster.address)
    checker = check(prog)
    for (line, ours), (_, local) in zip(checker.raised, embedded):
        if ours is not local:
            checker.fail(f"exception class differs between the cluster and connect('local'): "
                         f"{line}", f"local: {local.__module__}.{local.__qualname__}",
                         f"cluster: {ours.__module__}.{ours.__qualname__}")
