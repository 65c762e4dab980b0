"""Issue 15, item 4: digests from clients are checked against the real format everywhere,
a corrupt stored value is a missing tensor (not "Redis is down"), and one tenant cannot
open the store's circuit breaker for the others.

Before, `FetchTensor(hash="<h>:0")` read a chunk key of a large tensor; its bytes did not
parse as a TensorData, which the store's breaker took for a Redis outage and stopped using
Redis for every tenant for a second (another tenant's HasTensors then said "absent").
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from procs import start_redis, stop
from remotegrad.proto import codec, keys
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from sectools import Procs, as_tenant, code_of, put, sum_request, value, wait_for_workers

pytestmark = pytest.mark.integration

ALICE, BOB = "t-alice", "t-bob"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    redis = start_redis()
    procs = Procs(redis, tmp_path_factory.mktemp("digests"))
    try:
        gw = procs.gateway("--tokens", f"{ALICE}=alice,{BOB}=bob")
        procs.worker()
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address))
        wait_for_workers(stub, 1, ALICE)
        yield procs, stub
    finally:
        procs.close()
        stop(redis.proc)


def _bad_digests(h: str) -> list[str]:
    return [f"{h}:0", "*", h.upper(), h[:31], h + "0", f"../{h}", f"{h[:16]}:{h[16:]}", "",
            "x" * 10_000]


def test_every_client_digest_is_checked(lab):
    _, stub = lab
    x = np.arange(1000, dtype=np.float32)
    h = put(stub, x, ALICE)
    for bad in _bad_digests(h):
        code, details = code_of(lambda bad=bad: list(stub.FetchTensor(
            pb.FetchTensorRequest(hash=bad), metadata=as_tenant(ALICE), timeout=5)))
        assert code == "INVALID_ARGUMENT" and "digest" in details, (bad, code, details)
        code, _ = code_of(lambda bad=bad: stub.HasTensors(
            pb.HasTensorsRequest(hashes=[h, bad]), metadata=as_tenant(ALICE), timeout=5))
        assert code == "INVALID_ARGUMENT", (bad, code)
        if bad:  # a leaf's hash attribute (an empty one is a missing attribute)
            code, details = code_of(lambda bad=bad: stub.Compute(
                sum_request(x, inline=False, digest=bad), metadata=as_tenant(ALICE),
                timeout=10))
            assert code == "INVALID_ARGUMENT" and "digest" in details, (bad, code, details)
    # A stream announcing a name that is no digest is refused at its first chunk.
    for bad in (f"{h}:0", h.upper(), "*"):
        first = pb.TensorChunk(hash=bad, dtype="float32", shape=[1 << 28],
                               total_bytes=1 << 30, data=b"\0" * 64)
        code, details = code_of(lambda first=first: stub.PutTensor(
            iter([first]), metadata=as_tenant(ALICE), timeout=5))
        assert code == "INVALID_ARGUMENT" and "digest" in details, (bad, code, details)
    # Well-formed names still work.
    assert list(stub.HasTensors(pb.HasTensorsRequest(hashes=[h, "0" * 32]),
                                metadata=as_tenant(ALICE), timeout=5).present) == [True, False]
    data = b"".join(c.data for c in stub.FetchTensor(pb.FetchTensorRequest(hash=h),
                                                     metadata=as_tenant(ALICE), timeout=5))
    assert data == x.tobytes()


def test_one_tenant_cannot_stop_the_store_for_another(lab):
    """Alice names her large tensor's chunk key, and then a value of hers that is damaged
    in Redis; between each of her calls Bob asks for his own tensor: he always gets it."""
    procs, stub = lab
    big = np.zeros((33 << 20) // 4, np.float32)  # over one Redis chunk (32 MiB): 2 chunks
    big_h = put(stub, big, ALICE)
    y = np.arange(5000, dtype=np.float32)
    damaged = put(stub, y, ALICE)
    procs.redis.client().set(keys.tensor_key("alice", damaged), b"\x00\xffnot a TensorData")
    bob_h = put(stub, np.arange(3000, dtype=np.float64), BOB)
    alice, bob = [], []
    for i in range(20):
        if i % 2 == 0:
            alice.append(code_of(lambda: list(stub.FetchTensor(
                pb.FetchTensorRequest(hash=f"{big_h}:0"), metadata=as_tenant(ALICE),
                timeout=5)))[0])
        else:
            alice.append(code_of(lambda: list(stub.FetchTensor(
                pb.FetchTensorRequest(hash=damaged), metadata=as_tenant(ALICE),
                timeout=5)))[0])
        present = stub.HasTensors(pb.HasTensorsRequest(hashes=[bob_h]),
                                  metadata=as_tenant(BOB), timeout=5).present
        fetched = code_of(lambda: list(stub.FetchTensor(
            pb.FetchTensorRequest(hash=bob_h), metadata=as_tenant(BOB), timeout=5)))[0]
        bob.append((list(present), fetched))
    assert bob == [([True], "OK")] * 20, "bob's own tensor was reported absent or not served"
    # Alice's chunk-key name is refused; her damaged value is missing (the SDK resends).
    assert alice == ["INVALID_ARGUMENT", "FAILED_PRECONDITION"] * 10


def test_a_damaged_value_is_missing_and_replaced_when_sent_again(lab):
    procs, stub = lab
    y = np.linspace(0, 1, 4000, dtype=np.float32)
    h = codec.array_hash(y)
    put(stub, y, ALICE)
    procs.redis.client().set(keys.tensor_key("alice", h), b"\x0a\x03abc garbage")
    # By reference: the tensor is not held (FAILED_PRECONDITION), never INTERNAL.
    code, _ = code_of(lambda: stub.Compute(sum_request(y, inline=False),
                                           metadata=as_tenant(ALICE), timeout=10))
    assert code == "FAILED_PRECONDITION"
    # What the SDK then does: send it again, inline; the damaged value is replaced.
    resp = stub.Compute(sum_request(y), metadata=as_tenant(ALICE), timeout=10)
    assert value(resp) == pytest.approx(float(y.sum()), rel=1e-6)
    put(stub, y, ALICE)
    resp = stub.Compute(sum_request(y, inline=False), metadata=as_tenant(ALICE), timeout=10)
    assert value(resp) == pytest.approx(float(y.sum()), rel=1e-6)


def test_a_damaged_cached_result_is_a_miss(lab):
    procs, stub = lab
    y = np.arange(7, dtype=np.float32) * 3
    first = stub.Compute(sum_request(y), metadata=as_tenant(BOB), timeout=10)
    client = procs.redis.client()
    cached = client.keys(keys.result_pattern("bob"))
    assert cached
    for k in cached:
        client.set(k, b"\xff\xfe not a ComputeResponse")
    again = stub.Compute(sum_request(y), metadata=as_tenant(BOB), timeout=10)
    assert value(again) == value(first) == float(y.sum()) and not again.cache_hit
    assert stub.Compute(sum_request(y), metadata=as_tenant(BOB), timeout=10).cache_hit
