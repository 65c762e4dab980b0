"""Issue 15, item 11: client input that got INTERNAL or UNKNOWN now gets the status that
names it: an inline leaf (or any tensor) with 65 dims, a malformed Health/Check or
Health/Watch (gateway and worker), ClusterStatus over a registry holding foreign records.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from procs import start_redis, stop
from remotegrad.proto import codec, keys
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode
from sectools import Procs, as_tenant, code_of, value, wait_for_workers

pytestmark = pytest.mark.integration

TOKEN = "t-carol"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    redis = start_redis()
    procs = Procs(redis, tmp_path_factory.mktemp("codes"))
    try:
        gw = procs.gateway("--tokens", f"{TOKEN}=carol:operator")  # sees addresses
        worker = procs.worker()
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address))
        wait_for_workers(stub, 1, TOKEN)
        yield procs, gw, worker, stub
    finally:
        procs.close()
        stop(redis.proc)


def _sum_of(shape: tuple[int, ...], inline: bool = True, reshape=None) -> pb.ComputeRequest:
    data = np.ones(1, np.float32).tobytes()
    h = codec.tensor_hash("float32", shape, data)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": shape})]
    if reshape is not None:
        nodes.append(WireNode(1, "reshape", (0,), {"shape": reshape}))
    nodes.append(WireNode(len(nodes), "sum", (len(nodes) - 1,), {"dim": None,
                                                                 "keepdim": False}))
    tensors = [pb.TensorData(dtype="float32", shape=shape, data=data, hash=h)] if inline \
        else []
    return codec.encode_request(nodes, tensors, [len(nodes) - 1])


@pytest.mark.parametrize("case", ["inline leaf", "leaf by reference", "reshape"])
def test_too_many_dims_is_invalid_argument(lab, case):
    *_, stub = lab
    req = {"inline leaf": lambda: _sum_of((1,) * 65),
           "leaf by reference": lambda: _sum_of((1,) * 65, inline=False),
           "reshape": lambda: _sum_of((1,), reshape=(1,) * 65)}[case]()
    code, details = code_of(lambda: stub.Compute(req, metadata=as_tenant(TOKEN), timeout=10))
    assert code == "INVALID_ARGUMENT" and "65 dims" in details, (code, details)
    # 64 dims are fine.
    ok = stub.Compute(_sum_of((1,) * 64), metadata=as_tenant(TOKEN), timeout=10)
    assert value(ok) == 1.0


def test_malformed_health_requests_are_invalid_argument(lab):
    _, gw, worker, _ = lab
    for address in (gw.address, worker.address):
        with grpc.insecure_channel(address) as ch:
            check = ch.unary_unary("/grpc.health.v1.Health/Check")
            code, details = code_of(lambda check=check: check(b"\xff\xff\xff", timeout=5))
            assert code == "INVALID_ARGUMENT" and "HealthCheckRequest" in details, address
            watch = ch.unary_stream("/grpc.health.v1.Health/Watch")
            code, _ = code_of(lambda watch=watch: next(iter(watch(b"\x0a\xff", timeout=5))))
            assert code == "INVALID_ARGUMENT", address
            # Well-formed requests still answer, and Watch streams.
            stub = health_pb2_grpc.HealthStub(ch)
            assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
                health_pb2.HealthCheckResponse.SERVING
            first = next(iter(stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)))
            assert first.status == health_pb2.HealthCheckResponse.SERVING


def test_cluster_status_over_a_foreign_registry_record_is_ok(lab):
    procs, _, worker, stub = lab
    client = procs.redis.client()
    seconds, _ = client.time()  # filed as a heartbeat would, live for an hour
    client.hset(keys.WORKER_RECORDS, "junk", b"\xa0\x01 not a record")
    client.zadd(keys.WORKER_EXPIRY, {"junk": (seconds + 3600) * 1000})
    try:
        for _ in range(6):  # a few registry refreshes
            status = stub.ClusterStatus(pb.ClusterStatusRequest(), metadata=as_tenant(TOKEN),
                                        timeout=5)
            assert [w.address for w in status.workers] == [worker.address]
            time.sleep(0.25)
    finally:
        client.hdel(keys.WORKER_RECORDS, "junk")
        client.zrem(keys.WORKER_EXPIRY, "junk")
