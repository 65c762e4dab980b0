"""Two service behaviours against real processes: a full worker queue answers
RESOURCE_EXHAUSTED (and serves again once it drains); with no Redis at all, a gateway and
a worker given by address still compute and cache in process."""

from __future__ import annotations

import subprocess
import threading

import grpc
import numpy as np
import pytest

from procs import PY, free_port, start_cluster, start_redis, stop, wait_until
from remotegrad.proto import codec
from remotegrad.proto.codec import WireNode


def _slow_request(n: int = 1024, repeats: int = 24):
    """repeats chained n x n matmuls: long enough to hold a worker for a while."""
    x = (np.eye(n, dtype=np.float32) * np.float32(1.0001))
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (n, n)})]
    for i in range(repeats):
        nodes.append(WireNode(i + 1, "matmul", (i, 0), {}))
    nodes.append(WireNode(repeats + 1, "sum", (repeats,), {"dim": None, "keepdim": False}))
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [repeats + 1])


def _small_request(v: float, n: int = 3):
    x = np.full(n, v, dtype=np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (n,)}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [1])


@pytest.mark.slow
def test_full_queue_is_resource_exhausted_then_serves_again():
    redis = start_redis()
    cluster = start_cluster(redis, 1, "--max-inflight", "1", "--max-queue", "0")
    try:
        stub = cluster.stub()
        slow_done = threading.Event()
        results = []

        def slow():
            try:
                results.append(stub.Compute(_slow_request(), timeout=120))
            finally:
                slow_done.set()
        t = threading.Thread(target=slow)
        t.start()
        wait_until(lambda: cluster.status().workers[0].in_flight == 1, "slow call running")
        with pytest.raises(grpc.RpcError) as e:
            stub.Compute(_small_request(1.5), timeout=10)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "capacity" in e.value.details()
        t.join(timeout=120)
        assert slow_done.is_set() and len(results) == 1
        (got,) = codec.decode_response(stub.Compute(_small_request(1.5), timeout=10))
        assert float(got) == 4.5
    finally:
        cluster.close()
        stop(redis.proc)


def test_without_redis_a_static_worker_computes_and_the_gateway_caches():
    wport, gport = free_port(), free_port()
    worker = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "worker",
                               "--port", str(wport)], stdout=subprocess.DEVNULL)
    gateway = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "gateway",
                                "--port", str(gport), "--worker-addrs",
                                f"127.0.0.1:{wport}"], stdout=subprocess.DEVNULL)
    try:
        from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as ch:
            stub = pb_grpc.GatewayStub(ch)

            def ok():
                return stub.Compute(_small_request(2.0), timeout=5)
            wait_until(ok, "gateway and worker without Redis", procs=[worker, gateway])
            again = stub.Compute(_small_request(2.0), timeout=5)
            assert again.cache_hit and float(codec.decode_response(again)[0]) == 6.0
            # A leaf sent once (one large enough to be worth keeping) is held by the
            # gateway's in-process store and attached for the worker when a later request
            # names it by hash only.
            stub.Compute(_small_request(2.0, 1 << 15), timeout=5)
            req = _small_request(2.0, 1 << 15)
            del req.tensors[:]
            req.graph.nodes[1].op = "mean"
            (got,) = codec.decode_response(stub.Compute(req, timeout=5))
            assert float(got) == 2.0
    finally:
        stop(gateway)
        stop(worker)
