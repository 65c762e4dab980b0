"""Issue 15, item 12: ClusterStatus gives a tenant only what is its own.

Before: any tenant's ClusterStatus listed every worker's address and calls in flight and
the gateway's cache counters over all tenants. Now a tenant's token sees how many workers
are live and their backends, no address and no load, and the hits and misses of its own
calls; a token marked `token=name:operator` (or any caller of a gateway without tokens,
which listens on loopback only) sees the cluster. `remotegrad status` prints either view.
Real redis-server, gateway and worker processes on loopback.
"""

from __future__ import annotations

import subprocess

import grpc
import numpy as np
import pytest

from procs import PY, free_port, start_redis, stop
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from sectools import Procs, as_tenant, env, sum_request, value, wait_for_workers

pytestmark = pytest.mark.integration

OPS, ALICE, BOB = "tok-ops-0123456789ab", "tok-alice-0123456789", "tok-bob-0123456789ab"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    redis = start_redis()
    procs = Procs(redis, tmp_path_factory.mktemp("scope"))
    try:
        gw = procs.gateway("--tokens", f"{OPS}=ops:operator,{ALICE}=alice,{BOB}=bob")
        workers = [procs.worker(), procs.worker()]
        ch = grpc.insecure_channel(gw.address)
        stub = pb_grpc.GatewayStub(ch)
        wait_for_workers(stub, 2, OPS)
        yield procs, gw, workers, stub
        ch.close()
    finally:
        procs.close()
        stop(redis.proc)


def _status(stub, token) -> pb.ClusterStatusResponse:
    return stub.ClusterStatus(pb.ClusterStatusRequest(), metadata=as_tenant(token), timeout=5)


def test_a_tenant_sees_no_worker_address_or_load(lab):
    _, _, workers, stub = lab
    st = _status(stub, ALICE)
    assert st.scope == "tenant"
    assert len(st.workers) == 2
    assert all(w.address == "" and w.in_flight == 0 and w.backend for w in st.workers)
    raw = st.SerializeToString()
    for w in workers:
        assert w.address.encode() not in raw and w.address.rpartition(":")[2].encode() not in raw
    ops = _status(stub, OPS)
    assert ops.scope == "cluster"
    assert sorted(w.address for w in ops.workers) == sorted(w.address for w in workers)


def test_a_tenants_cache_counters_are_its_own(lab):
    _, _, _, stub = lab
    before = {t: _status(stub, t) for t in (ALICE, BOB, OPS)}
    x, y = np.arange(5, dtype=np.float32), np.full(7, 3.0, np.float32)
    for _ in range(2):
        assert value(stub.Compute(sum_request(x), metadata=as_tenant(ALICE), timeout=30)) == 10
    for _ in range(3):
        assert value(stub.Compute(sum_request(y), metadata=as_tenant(BOB), timeout=30)) == 21
    after = {t: _status(stub, t) for t in (ALICE, BOB, OPS)}

    def grew(t):
        return (after[t].cache_hits - before[t].cache_hits,
                after[t].cache_misses - before[t].cache_misses)
    assert grew(ALICE) == (1, 1)  # its first call computed, the second was a hit
    assert grew(BOB) == (2, 1)
    assert grew(OPS) == (3, 2)  # the operator: every tenant's on this gateway


def _cli_status(address: str, token: str | None) -> str:
    e = env()
    if token:
        e["REMOTEGRAD_TOKEN"] = token
    out = subprocess.run([PY, "-m", "remotegrad.server.cli", "status", "--address", address],
                         env=e, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_remotegrad_status_prints_the_callers_view(lab):
    _, gw, workers, _ = lab
    tenant = _cli_status(gw.address, ALICE)
    assert "workers  2" in tenant and "tenant's view" in tenant and "your calls:" in tenant
    assert not any(w.address in tenant for w in workers)
    operator = _cli_status(gw.address, OPS)
    assert all(w.address in operator for w in workers) and "tenant's view" not in operator


def test_without_tokens_the_loopback_caller_is_the_operator(lab):
    procs, _, workers, _ = lab
    gw = procs.gateway()  # no tokens: loopback only, one tenant
    with grpc.insecure_channel(gw.address) as ch:
        stub = pb_grpc.GatewayStub(ch)
        wait_for_workers(stub, 2, None)
        st = _status(stub, None)
    assert st.scope == "cluster"
    assert sorted(w.address for w in st.workers) == sorted(w.address for w in workers)


def test_a_token_with_an_unknown_role_stops_the_gateway(tmp_path):
    out = subprocess.run([PY, "-m", "remotegrad.server.cli", "gateway", "--port",
                          str(free_port())], env={**env(), "REMOTEGRAD_TOKENS": "t1=alice:admin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "role 'admin'" in out.stderr and "operator" in out.stderr
