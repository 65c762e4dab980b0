"""The worker pool against real processes: workers joining and leaving while calls run,
Redis stopped and restarted under calls, no workers at all."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from procs import start_cluster, start_redis, stop, wait_until
from remotegrad.proto import codec
from remotegrad.proto.codec import WireNode


def _request(i: int):
    """A small gradient-free graph with fresh leaf bytes, so no call is a cache hit."""
    x = np.full((4, 4), float(i), dtype=np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (4, 4)}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [1]), 16.0 * i


class Load:
    """Calls from a few threads until stopped; records failures and which workers served."""

    def __init__(self, address: str, threads: int = 4) -> None:
        self.address, self.stop = address, threading.Event()
        self.calls, self.failures, self.workers = 0, [], []
        self._threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]
        self._lock = threading.Lock()

    def _run(self, t: int) -> None:
        from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
        with grpc.insecure_channel(self.address) as ch:
            stub = pb_grpc.GatewayStub(ch)
            i = t * 1_000_000
            deadline = time.monotonic() + 60
            while not self.stop.is_set() and time.monotonic() < deadline:
                i += 1
                req, want = _request(i)
                try:
                    resp = stub.Compute(req, timeout=20)
                    (got,) = codec.decode_response(resp)
                    ok = float(got) == want
                    with self._lock:
                        self.calls += 1
                        self.workers.append(resp.worker)
                        if not ok:
                            self.failures.append(f"wrong value {got} != {want}")
                except grpc.RpcError as e:
                    with self._lock:
                        self.calls += 1
                        self.failures.append(f"{e.code().name}: {e.details()}")

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self._threads:
            t.join(timeout=30)


@pytest.fixture
def own_redis():
    """A Redis of this test's own: the worker registry in it is this test's alone."""
    r = start_redis()
    yield r
    stop(r.proc)


@pytest.mark.slow
def test_workers_join_and_leave_while_calls_run(own_redis):
    cluster = start_cluster(own_redis, 1)
    try:
        with Load(cluster.address) as load:
            time.sleep(0.5)
            new = cluster.add_worker()
            cluster.wait_workers(2)
            time.sleep(1.0)
            stop(cluster.workers[0])  # SIGTERM: drains, deregisters
            cluster.wait_workers(1)
            time.sleep(0.5)
        assert load.calls > 20
        assert load.failures == []
        served = set(load.workers)
        assert len(served) == 2, served  # the new worker took calls
        assert new.poll() is None
    finally:
        cluster.close()


@pytest.mark.slow
def test_redis_stopped_and_restarted_under_calls():
    redis = start_redis()
    cluster = start_cluster(redis, 2)
    try:
        with Load(cluster.address) as load:
            time.sleep(0.5)
            stop(redis.proc)
            time.sleep(1.5)
            calls_while_down = load.calls
            time.sleep(1.0)
            assert load.calls > calls_while_down  # still serving without Redis
            redis = start_redis(redis.port)
            cluster.redis = redis
            time.sleep(2.0)
        assert load.failures == [], load.failures[:5]
        assert cluster.metric("remotegrad_redis_errors_total") > 0
        # Caching works again: the same computation twice is a hit the second time.
        from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
        req, _ = _request(-1)
        with grpc.insecure_channel(cluster.address) as ch:
            stub = pb_grpc.GatewayStub(ch)
            wait_until(lambda: stub.Compute(req, timeout=10) and
                       stub.Compute(req, timeout=10).cache_hit, "cache back", timeout=10)
    finally:
        cluster.close()
        stop(redis.proc)


@pytest.mark.slow
def test_no_workers_fails_fast_then_recovers(own_redis):
    cluster = start_cluster(own_redis, 1)
    try:
        from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
        stop(cluster.workers[0])
        cluster.wait_workers(0)
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(cluster.address))
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            stub.Compute(_request(-77)[0], timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "no live workers" in e.value.details()
        assert time.monotonic() - start < 2.0
        cluster.add_worker()
        cluster.wait_workers(1)
        (got,) = codec.decode_response(stub.Compute(_request(-77)[0], timeout=10))
        assert float(got) == -1232.0
    finally:
        cluster.close()
