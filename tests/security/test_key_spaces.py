"""Issue 15, item 3: tenant names cannot collide with another key space.

Before, a tenant's tensors lived at rg:v1:{tenant}:tensor:{hash} next to the worker
registry's rg:v1:workers:{address}: one PutTensor by a tenant called `workers` put a tensor
into the registry, after which every Compute failed INTERNAL (JSONDecodeError) and
ClusterStatus UNKNOWN. Now the kind comes first (proto/keys.py), the registry is two keys
of its own (proto/registry.py), and a registry record that does not parse is skipped and
logged instead of failing the whole view.
"""

from __future__ import annotations

import fnmatch
import json
import time

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procs import start_redis, stop
from remotegrad.proto import keys, registry
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from sectools import Procs, as_tenant, code_of, put, sum_request, value, wait_for_workers

pytestmark = pytest.mark.integration

# Tenant names chosen to look like the other key spaces and their parts.
TOKENS = "t-workers=workers,t-alice=alice:operator,t-tensor=tensor,t-result=result,t-v1=v1,t-rg=rg"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    redis = start_redis()
    procs = Procs(redis, tmp_path_factory.mktemp("keys"))
    try:
        gw = procs.gateway("--tokens", TOKENS)
        worker = procs.worker()
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address))
        wait_for_workers(stub, 1, "t-alice")
        yield procs, gw, stub, worker
    finally:
        procs.close()
        stop(redis.proc)


def test_a_tenant_named_workers_stays_out_of_the_worker_registry(lab):
    procs, gw, stub, _ = lab
    x = np.arange(20_000, dtype=np.float32)
    for token in ("t-workers", "t-tensor", "t-result", "t-v1", "t-rg"):
        h = put(stub, x, token)
        # Stored, and found again by the tenant that stored it (through a worker).
        resp = stub.Compute(sum_request(x, inline=False), metadata=as_tenant(token),
                            timeout=30)
        assert value(resp) == float(x.sum())
    # Everyone else is unaffected: compute and ClusterStatus as before.
    resp = stub.Compute(sum_request(np.ones(5, np.float32)), metadata=as_tenant("t-alice"),
                        timeout=30)
    assert value(resp) == 5.0
    status = stub.ClusterStatus(pb.ClusterStatusRequest(), metadata=as_tenant("t-alice"),
                                timeout=5)
    assert len(status.workers) == 1
    client = procs.redis.client()
    assert list(registry.workers(client)) == [status.workers[0].address]
    assert client.hlen(keys.WORKER_RECORDS) == client.zcard(keys.WORKER_EXPIRY) == 1
    assert client.exists(keys.tensor_key("workers", h))
    assert "skipping" not in gw.logged()  # nothing of a tenant's ever looked like a record


def test_records_that_do_not_parse_are_skipped_and_logged(lab):
    procs, gw, stub, worker = lab
    client = procs.redis.client()
    bad = {"10.0.0.1:1": b"\xa0not json",
           "10.0.0.2:2": json.dumps({"no": "address"}),
           "10.0.0.3:3": json.dumps(["a", "list"]),
           "10.0.0.4:4": json.dumps({"address": "10.9.9.9:9"})}
    try:
        # Filed as a heartbeat would file them, live for an hour of Redis's clock.
        seconds, _ = client.time()
        expiry = (seconds + 3600) * 1000
        for addr, record in bad.items():
            client.hset(keys.WORKER_RECORDS, addr, record)
        client.zadd(keys.WORKER_EXPIRY, {addr: expiry for addr in [*bad, "10.0.0.5:5"]})
        # 10.0.0.5:5: an expiry entry without any record.
        for _ in range(8):  # across several registry refreshes (every 0.5 s)
            time.sleep(0.25)
            status = stub.ClusterStatus(pb.ClusterStatusRequest(),
                                        metadata=as_tenant("t-alice"), timeout=5)
            assert [w.address for w in status.workers] == [worker.address]
            resp = stub.Compute(sum_request(np.full(3, 2.0, np.float32)),
                                metadata=as_tenant("t-alice"), timeout=30)
            assert value(resp) == 6.0
        log = gw.logged()
        for addr in ("10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3", "10.0.0.4:4", "10.0.0.5:5"):
            assert f"skipping worker {addr}" in log, addr
            # Logged once, not on every refresh.
            assert log.count(f"skipping worker {addr}") == 1
    finally:
        client.hdel(keys.WORKER_RECORDS, *bad)
        client.zrem(keys.WORKER_EXPIRY, *bad, "10.0.0.5:5")


def test_a_registry_key_of_another_type_is_logged_and_the_view_kept(lab):
    """Someone replaced the registry's hash with a string: the gateway keeps its last view
    (and says why) instead of failing calls, and reads the registry again once it is one."""
    procs, gw, stub, worker = lab
    client = procs.redis.client()
    records = client.hgetall(keys.WORKER_RECORDS)
    client.delete(keys.WORKER_RECORDS)
    client.set(keys.WORKER_RECORDS, b"not a hash")
    try:
        time.sleep(0.6)  # at least one registry refresh (every 0.5 s)
        resp = stub.Compute(sum_request(np.full(3, 2.0, np.float32)),
                            metadata=as_tenant("t-alice"), timeout=30)
        assert value(resp) == 6.0
        assert "worker registry unreadable, keeping the last view" in gw.logged()
    finally:
        client.delete(keys.WORKER_RECORDS)
        client.hset(keys.WORKER_RECORDS, mapping=records)
    wait_for_workers(stub, 1, "t-alice")


def test_a_malformed_cluster_status_request_is_invalid_argument(lab):
    _, gw, _, _ = lab
    with grpc.insecure_channel(gw.address) as ch:
        raw = ch.unary_unary("/remotegrad.v1.Gateway/ClusterStatus")
        code, details = code_of(lambda: raw(b"\xff\xff\xff", timeout=5,
                                            metadata=as_tenant("t-alice")))
    assert code == "INVALID_ARGUMENT" and "ClusterStatusRequest" in details


NAMES = st.from_regex(keys.TENANT, fullmatch=True)
DIGESTS = st.from_regex(keys.DIGEST, fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(NAMES, NAMES, DIGESTS)
def test_no_tenant_key_is_any_other_key(tenant, other, digest):
    """Key names, directly: no tenant's tensor, result or rate key falls in the worker
    registry's space or equals another tenant's key or a key of another kind, and a
    tensor's hash tag is its digest (its slot in a Redis Cluster)."""
    mine = [keys.tensor_key(tenant, digest), keys.result_key(tenant, digest),
            keys.rate_key(tenant)]
    assert not any(k.startswith(keys.WORKERS_SPACE) for k in mine)
    assert not {keys.WORKER_RECORDS, keys.WORKER_EXPIRY} & set(mine)
    assert len(set(mine)) == 3
    assert fnmatch.fnmatchcase(mine[0], keys.tensor_pattern(tenant))
    assert mine[0].count("{") == 1 and mine[0].endswith(f"{{{digest}}}")
    if other != tenant:
        theirs = {keys.tensor_key(other, digest), keys.result_key(other, digest),
                  keys.rate_key(other)}
        assert not theirs & set(mine)


@pytest.mark.parametrize("name", ["a:b", "*", "", "x" * 65, "ü", "a b", "{t}", None])
def test_names_that_could_reach_other_keys_are_refused(name):
    with pytest.raises(keys.KeyNameError):
        keys.tensor_key(name, "0" * 32)
    with pytest.raises(keys.KeyNameError):
        keys.tensor_key("alice", name)
