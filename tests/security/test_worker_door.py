"""Issue 15, item 1 (the worker side): workers accept only their gateway, never store bytes
under a name they do not hash to, and never serve from their local cache bytes that differ
from what the name stands for.

Before, any local process could call Worker/Execute as any tenant (the tenant is a header),
and plant zeros under the hash of a public array: the worker's local LRU kept the first
version of a hash, so the tenant's next call computed on the planted bytes.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from procs import start_redis, stop
from remotegrad.proto import codec, keys
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode
from remotegrad.proto.peer import SECRET_KEY
from sectools import (SECRET, Procs, as_tenant, channel, code_of, put, sum_request, value,
                      wait_for_workers)

pytestmark = pytest.mark.integration

ALICE = "t-alice"


@pytest.fixture(scope="module")
def redis():
    r = start_redis()
    yield r
    stop(r.proc)


@pytest.fixture
def procs(redis, tmp_path):
    p = Procs(redis, tmp_path)
    yield p
    p.close()
    redis.client().flushall()


def _gateway_and_worker(procs, gateway_secret, worker_secret):
    gw = procs.gateway("--tokens", f"{ALICE}=alice", secret=gateway_secret)
    worker = procs.worker(secret=worker_secret)
    stub = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address))
    wait_for_workers(stub, 1, ALICE)
    return gw, worker, stub


def _execute(address: str, req: pb.ComputeRequest, metadata=()) -> pb.ComputeResponse:
    with grpc.insecure_channel(address) as ch:
        return pb_grpc.WorkerStub(ch).Execute(req, timeout=10, metadata=metadata)


def test_a_worker_with_a_secret_takes_calls_from_its_gateway_only(procs):
    _, worker, stub = _gateway_and_worker(procs, SECRET, SECRET)
    x = np.arange(10, dtype=np.float32)
    # Through the gateway (which sends the secret): works.
    assert value(stub.Compute(sum_request(x), metadata=as_tenant(ALICE), timeout=30)) == 45.0
    # Any other local process: no secret, a wrong one, one of another length, or the
    # gateway's tenant header alone: refused before anything runs.
    for md in ((), ((SECRET_KEY, "wrong-secret-of-enough-length"),),
               ((SECRET_KEY, SECRET[:-1]),), ((SECRET_KEY, SECRET + "x"),),
               (("x-tenant", "alice"),)):
        code, details = code_of(lambda md=md: _execute(worker.address, sum_request(x), md))
        assert code == "UNAUTHENTICATED" and "gateway" in details, (md, code)
    # Refused unread: even bytes that are no ComputeRequest at all.
    with grpc.insecure_channel(worker.address) as ch:
        raw = ch.unary_unary("/remotegrad.v1.Worker/Execute")
        assert code_of(lambda: raw(b"\xff\xff", timeout=5))[0] == "UNAUTHENTICATED"
    # With the secret (what the gateway sends), a direct call works.
    resp = _execute(worker.address, sum_request(x), ((SECRET_KEY, SECRET),))
    assert value(resp) == 45.0
    # Health stays open for probes; workers serve no reflection.
    with grpc.insecure_channel(worker.address) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                      timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflect = ch.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        code, _ = code_of(lambda: list(reflect(iter([b""]), timeout=5)))
        assert code == "UNIMPLEMENTED"
    assert "no worker secret" not in worker.logged()


def test_a_gateway_with_another_secret_gets_a_clear_error(procs):
    _, _, stub = _gateway_and_worker(procs, SECRET + "-old", SECRET)
    code, details = code_of(lambda: stub.Compute(sum_request(np.ones(3, np.float32)),
                                                 metadata=as_tenant(ALICE), timeout=30))
    # Not UNAUTHENTICATED: the caller's token is fine, the cluster's configuration is not.
    assert code == "INTERNAL" and "REMOTEGRAD_WORKER_SECRET" in details, (code, details)


def test_a_worker_without_a_secret_still_works_and_warns(procs):
    _, worker, stub = _gateway_and_worker(procs, None, None)
    resp = stub.Compute(sum_request(np.ones(4, np.float32)), metadata=as_tenant(ALICE),
                        timeout=30)
    assert value(resp) == 4.0
    assert "no worker secret" in worker.logged()


def test_inline_tensors_are_verified_before_they_are_stored(procs):
    """A process that reaches a worker without a secret (the back-compatible setup)
    tries to plant zeros under the name of a public array; alice then computes on it."""
    _, worker, stub = _gateway_and_worker(procs, None, None)
    x = np.arange(1, 20_001, dtype=np.float32)  # large enough to go by reference
    forged = sum_request(x, data=np.zeros_like(x))
    forged_md = (("x-tenant", "alice"),)
    code, details = code_of(lambda: _execute(worker.address, forged, forged_md))
    assert code == "INVALID_ARGUMENT" and "hash" in details, (code, details)
    # Alice uploads x and computes by reference on the same (only) worker: x's bytes.
    put(stub, x, ALICE)
    resp = stub.Compute(sum_request(x, inline=False), metadata=as_tenant(ALICE), timeout=30)
    assert value(resp) == float(x.sum())


def test_the_local_cache_never_serves_bytes_other_than_the_names(procs):
    """A local process with Redis access writes zeros under alice's tensor key: the
    worker refuses to use them (the tensor is missing: the SDK sends it again), never
    computes on them, and never keeps them in its local cache."""
    _, _, stub = _gateway_and_worker(procs, SECRET, SECRET)
    x = np.arange(1, 20_001, dtype=np.float32)
    h = codec.array_hash(x)
    planted = pb.TensorData(dtype="float32", shape=x.shape, hash=h,
                            data=np.zeros_like(x).tobytes())
    procs.redis.client().set(keys.tensor_key("alice", h), planted.SerializeToString())
    code, _ = code_of(lambda: stub.Compute(sum_request(x, inline=False),
                                           metadata=as_tenant(ALICE), timeout=30))
    assert code == "FAILED_PRECONDITION", code
    # The SDK's answer: it sends x inline; from then on the right bytes, by reference too.
    assert value(stub.Compute(sum_request(x), metadata=as_tenant(ALICE), timeout=30)) \
        == float(x.sum())
    # Planted again: another graph over x (no cached result) still reads x's own bytes.
    procs.redis.client().set(keys.tensor_key("alice", h), planted.SerializeToString())
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": x.shape}),
             WireNode(1, "mul", (0, 0), {}),
             WireNode(2, "sum", (1,), {"dim": None, "keepdim": False})]
    resp = stub.Compute(codec.encode_request(nodes, [], [2]), metadata=as_tenant(ALICE),
                        timeout=30)
    assert value(resp) == pytest.approx(float((x.astype(np.float64) ** 2).sum()), rel=1e-5)


def test_mutual_tls_and_the_secret_together(procs, tmp_path):
    """Workers that demand client certificates and the secret: the gateway (certificate
    and secret) computes; a process holding a certificate of the same CA, but not the
    secret, is refused; one without a certificate does not get through TLS at all."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "faults"))
    from certs import make_certs
    certs = make_certs(tmp_path / "certs")
    tls = ["--tls-cert", str(certs["server.pem"]), "--tls-key", str(certs["server.key"]),
           "--tls-ca", str(certs["ca.pem"])]
    ca = certs["ca.pem"].read_bytes()
    to_gateway = grpc.ssl_channel_credentials(ca)
    gw = procs.gateway("--tokens", f"{ALICE}=alice", *tls, secret=SECRET,
                       credentials=to_gateway)
    worker = procs.worker(*tls, "--tls-client-auth", "true", secret=SECRET)
    stub = pb_grpc.GatewayStub(channel(gw.address, to_gateway))
    wait_for_workers(stub, 1, ALICE)
    x = np.arange(6, dtype=np.float32)
    assert value(stub.Compute(sum_request(x), metadata=as_tenant(ALICE), timeout=30)) == 15.0
    with_cert = grpc.ssl_channel_credentials(ca, certs["client.key"].read_bytes(),
                                             certs["client.pem"].read_bytes())
    with channel(worker.address, with_cert) as ch:
        code, _ = code_of(lambda: pb_grpc.WorkerStub(ch).Execute(sum_request(x), timeout=5))
        assert code == "UNAUTHENTICATED"
        resp = pb_grpc.WorkerStub(ch).Execute(sum_request(x), timeout=5,
                                              metadata=((SECRET_KEY, SECRET),))
        assert value(resp) == 15.0
    with channel(worker.address, to_gateway) as ch:  # no client certificate
        code, _ = code_of(lambda: pb_grpc.WorkerStub(ch).Execute(
            sum_request(x), timeout=5, metadata=((SECRET_KEY, SECRET),)))
        assert code == "UNAVAILABLE"
