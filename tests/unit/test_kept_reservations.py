"""A call's reservation of its kept results in the tenant's ledger ends with the call
(server/durable.py Reservation; Gateway.compute), against a real redis-server: a call
whose answer the gateway refuses gives its bytes back; a failed call does not give back
what a concurrent call that was answered keeps. The workers are stand-ins here (the
gateway's own execute replaced): what is tested is the gateway's bookkeeping."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from procs import free_port, stop, wait_until
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.catalog import OpError
from remotegrad.proto.codec import WireNode
from remotegrad.proto.kept import with_kept
from remotegrad.proto.store import RedisTensorStore
from remotegrad.server.cache import MemoryResultCache
from remotegrad.server.gateway import Gateway, Limits
from remotegrad.server.pool import WorkerPool


@pytest.fixture(scope="module")
def redis_url():
    import shutil
    import subprocess
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--maxmemory-policy", "volatile-lru"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis
    wait_until(lambda: redis.Redis.from_url(url).ping(), "redis-server", procs=[proc])
    yield url
    stop(proc)


@pytest.fixture()
def gateway(redis_url):
    store = with_kept(RedisTensorStore(redis_url, ttl=3600))
    store.redis.flushall()
    gw = Gateway(store, MemoryResultCache(), WorkerPool(None, ["127.0.0.1:1"]),
                 Limits(local_max_nodes=0))
    yield gw
    gw.durable.close()


A = np.arange(64, dtype=np.float32).reshape(8, 8)


def _request() -> pb.ComputeRequest:
    h = codec.array_hash(A)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": A.shape}),
             WireNode(1, "neg", (0,), {})]
    req = codec.encode_request(nodes, [codec.encode_array(A, h)], [1])
    req.keep.append(1)
    return req


def _answer(req, with_bytes: bool = False) -> pb.ComputeResponse:
    """What a worker answers: the kept result by reference (an older worker: bytes)."""
    out = pb.TensorData(hash=req.keep_as[0], dtype="float32", shape=A.shape)
    if with_bytes:
        out.data = (-A).tobytes()
    return pb.ComputeResponse(results=[out], worker="127.0.0.1:1")


def _settled(gw) -> int:
    gw.durable.sweep_once()
    assert gw.remember.flush()
    return gw.durable.kept.used("t")


def test_an_answer_the_gateway_refuses_gives_back_its_reservation(gateway):
    """The worker answers the kept result with bytes (_note_kept refuses it: the call
    fails): the bytes the call reserved are given back (they stayed counted against the
    tenant's quota for good)."""
    gateway._execute_recovering = lambda req, *a, **k: _answer(req, with_bytes=True)
    with pytest.raises(OpError, match="with bytes"):
        gateway.compute(_request(), "t", 30, None)
    assert _settled(gateway) == 0


def test_a_failed_call_leaves_what_a_concurrent_answered_call_keeps(gateway):
    """Two calls keep the same name at once: the first reserves it (new), the second
    finds it reserved and is answered; then the first fails. The name is the second
    call's client's: it stays in the ledger (the first's unreserve released it, and the
    next settle deleted its copy and its bytes)."""
    first_runs, second_done = threading.Event(), threading.Event()
    calls = []

    def execute(req, *a, **k):
        calls.append(req)
        if len(calls) == 1:
            first_runs.set()
            assert second_done.wait(30)
            raise RuntimeError("the first call's worker died")
        return _answer(req)

    gateway._execute_recovering = execute
    failed = []

    def first():
        try:
            gateway.compute(_request(), "t", 30, None)
        except RuntimeError as e:
            failed.append(e)

    t = threading.Thread(target=first)
    t.start()
    assert first_runs.wait(30)
    resp = gateway.compute(_request(), "t", 30, None)
    second_done.set()
    t.join(30)
    assert failed and resp.results[0].hash == calls[0].keep_as[0]
    assert _settled(gateway) == A.nbytes
