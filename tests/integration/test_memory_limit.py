"""Workers' memory limits against real processes: a worker refuses a graph over its limit
before touching a leaf, runs out of memory without dying, advertises its limit; the gateway
routes big graphs to workers that can hold them and refuses up front what none can.
(On a numpy worker the limit is its memory budget; on cupy it also caps CuPy's pool.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import grpc
import numpy as np
import pytest

from procs import PY, free_port, start_cluster, start_redis, stop, wait_until
from remotegrad.proto import codec, keys, registry
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode

MIB = 1 << 20
SMALL = 1 << 10  # elements: a few KiB at the peak
BIG = MIB // 4  # float32 elements: a 1 MiB leaf and a 1 MiB exp(), 2 MiB at the peak


def exp_sum(n: int, value: float):
    """sum(exp(x)) over n float32 elements of `value`, sent inline."""
    x = np.full(n, value, np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (n,)}),
             WireNode(1, "exp", (0,), {}),
             WireNode(2, "sum", (1,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [2]), h


def huge():
    """exp() of a (2^24, 2^24) float32 broadcast: a 1 PiB allocation that no machine makes;
    sent straight to a worker (the gateway would refuse it by its estimate)."""
    x = np.ones((1, 1), np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (1, 1)}),
             WireNode(1, "expand", (0,), {"shape": (1 << 24, 1 << 24)}),
             WireNode(2, "exp", (1,), {}),
             WireNode(3, "sum", (2,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [3])


def _value(resp) -> float:
    (got,) = codec.decode_response(resp)
    return float(got)


def _expected(n: int, value: float) -> float:
    return float(np.exp(np.full(n, value, np.float32)).sum())


class Worker:
    """One worker process without Redis, called directly (no gateway in between)."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "worker",
                                      "--port", str(self.port), *args],
                                     stdout=subprocess.DEVNULL)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.WorkerStub(self.channel)
        try:
            wait_until(lambda: self.stub.Execute(exp_sum(SMALL, 0.0)[0], timeout=5),
                       "worker", procs=[self.proc])
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.channel.close()
        stop(self.proc)


def test_a_worker_refuses_a_graph_over_its_limit_and_computes_smaller_ones():
    w = Worker("--memory-limit", "1MiB")
    try:
        with pytest.raises(grpc.RpcError) as err:
            w.stub.Execute(exp_sum(BIG, 0.5)[0], timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = err.value.details()
        # 1 MiB leaf + 1 MiB exp, and the request's own copy of the inline leaf's data (the
        # worker's; its data bytes since 59a17b1, not the message's ByteSize)
        assert "needs about 3164160 bytes (3.0 MiB) at its peak" in details, details
        assert "memory limit of 1048576 bytes (1.0 MiB) (numpy)" in details, details
        for v in (0.25, 0.5):
            assert _value(w.stub.Execute(exp_sum(SMALL, v)[0], timeout=30)) == \
                pytest.approx(_expected(SMALL, v), rel=1e-6)
    finally:
        w.close()


def test_out_of_memory_is_resource_exhausted_and_the_worker_keeps_serving():
    w = Worker("--max-flops", "0")  # no limit: nothing refuses the graph before it runs
    try:
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as err:
                w.stub.Execute(huge(), timeout=60)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = err.value.details()
            assert "ran out of memory computing the graph (MemoryError" in details, details
            assert "needs about 2251799813709824 bytes (2.0 PiB)" in details, details
            assert _value(w.stub.Execute(exp_sum(SMALL, 0.75)[0], timeout=30)) == \
                pytest.approx(_expected(SMALL, 0.75), rel=1e-6)
        assert w.proc.poll() is None
    finally:
        w.close()


def _registry(redis) -> dict[str, dict]:
    return registry.workers(redis.client())


@pytest.fixture
def own_redis():
    """A Redis of this test's own: the worker registry in it is this test's alone."""
    r = start_redis()
    yield r
    stop(r.proc)


@pytest.mark.slow
def test_the_gateway_refuses_what_no_worker_holds_and_routes_big_graphs_to_big_workers(
        own_redis):
    cluster = start_cluster(own_redis, 0)
    try:
        cluster.add_worker("--memory-limit", "1MiB")
        cluster.wait_workers(1)
        (small_worker, info), = _registry(own_redis).items()
        assert info["memory_limit"] == MIB and info["backend"] == "numpy" and info["pid"]
        stub = cluster.stub()

        req, digest = exp_sum(BIG, 0.5)
        with pytest.raises(grpc.RpcError) as err:
            stub.Compute(req, timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = err.value.details()
        assert "needs about 2115584 bytes (2.0 MiB) at its peak" in details, details
        assert "largest worker memory limit is 1048576 bytes (1.0 MiB) (1 live worker)" \
            in details, details
        # Up front: the leaf was not even staged.
        assert not own_redis.client().exists(keys.tensor_key("default", digest))
        resp = stub.Compute(exp_sum(SMALL, 0.5)[0], timeout=30)
        assert resp.worker == small_worker
        assert _value(resp) == pytest.approx(_expected(SMALL, 0.5), rel=1e-6)

        cluster.add_worker("--memory-limit", "64MiB")
        cluster.wait_workers(2)
        (big_worker,) = [a for a, i in _registry(own_redis).items() if i["memory_limit"]
                         == 64 * MIB]
        for k in range(6):  # fresh leaves: no call is a cache hit
            v = 0.01 * (k + 1)
            resp = stub.Compute(exp_sum(BIG, v)[0], timeout=60)
            assert not resp.cache_hit and resp.worker == big_worker
            assert _value(resp) == pytest.approx(_expected(BIG, v), rel=1e-5)
        served = {stub.Compute(exp_sum(SMALL, 1 + 0.01 * k)[0], timeout=30).worker
                  for k in range(8)}
        assert served <= {small_worker, big_worker}
    finally:
        cluster.close()


@pytest.mark.slow
def test_cluster_up_gives_its_workers_the_memory_limit():
    port = free_port()
    proc = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "cluster", "up", "--workers",
                             "1", "--port", str(port), "--memory-limit", "1MiB"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and "ready at" not in line:
            line = proc.stdout.readline()
            assert line, "cluster up exited before it was ready"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.RpcError) as err:
                pb_grpc.GatewayStub(ch).Compute(exp_sum(BIG, 0.5)[0], timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "largest worker memory limit is 1048576 bytes" in err.value.details()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
