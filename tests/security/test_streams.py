"""Issue 15, item 6: PutTensor streams cannot hold the gateway's memory or threads.

Before: a 60-byte first chunk announcing 1 GiB made the gateway allocate and zero-fill
1 GiB at once, and 32 idle streams took all its 32 threads (health checks and other
tenants timed out). Now the buffer grows with the bytes that arrive, a tenant may have 4
streams open and the gateway 16 (half its threads), and a stream that sends nothing for
--stream-idle-timeout seconds is cancelled.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from procs import start_redis, stop
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from sectools import Procs, as_tenant, put

pytestmark = pytest.mark.integration

MiB = 1 << 20
TENANTS = [f"t{i}" for i in range(6)]
TOKENS = ",".join(f"tok-streams-{t}-0123456789={t}" for t in TENANTS)


def _token(tenant: str) -> str:
    return f"tok-streams-{tenant}-0123456789"


@pytest.fixture
def gateway(tmp_path):
    redis = start_redis()
    procs = Procs(redis, tmp_path)
    try:
        yield procs.gateway("--tokens", TOKENS, "--stream-idle-timeout", "3")
    finally:
        procs.close()
        stop(redis.proc)


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


class Stalled:
    """A PutTensor stream that sends a first chunk announcing `nbytes` and then nothing."""

    def __init__(self, stub, tenant: str, nbytes: int = 1 << 30) -> None:
        self.release = threading.Event()
        first = pb.TensorChunk(hash="ab" * 16, dtype="uint8", shape=[nbytes],
                               total_bytes=nbytes, offset=0, data=b"\0" * 16)

        def chunks():
            yield first
            self.release.wait(60)
        self.future = stub.PutTensor.future(chunks(), metadata=as_tenant(_token(tenant)),
                                            timeout=60)

    def code(self, timeout: float = 30.0) -> str:
        try:
            self.future.result(timeout=timeout)
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    def end(self) -> None:
        self.release.set()


def _health_seconds(address: str) -> float:
    t0 = time.perf_counter()
    with grpc.insecure_channel(address) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                     timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return time.perf_counter() - t0


def test_an_announced_gigabyte_costs_what_was_sent(gateway):
    stub = pb_grpc.GatewayStub(grpc.insecure_channel(gateway.address))
    before = _rss(gateway.popen.pid)
    streams = [Stalled(stub, "t0") for _ in range(3)]
    time.sleep(1.5)  # the gateway has read each first chunk
    grown = _rss(gateway.popen.pid) - before
    print(f"\n3 streams announcing 1 GiB each: gateway RSS +{grown / MiB:.1f} MiB")
    assert grown < 64 * MiB, grown
    # Idle: cancelled after --stream-idle-timeout (3 s), not left holding a thread.
    t0 = time.monotonic()
    codes = [s.code() for s in streams]
    waited = time.monotonic() - t0
    for s in streams:
        s.end()
    assert codes == ["CANCELLED"] * 3 and waited < 10, (codes, waited)
    # Their slots are free again: the tenant may open its 4 streams.
    again = [Stalled(stub, "t0") for _ in range(4)]
    time.sleep(1.0)
    assert not any(s.future.done() for s in again), [s.code() for s in again]
    for s in again:
        s.end()
    assert all(s.code() == "INVALID_ARGUMENT" for s in again)  # ended short of 1 GiB


def test_streams_are_bounded_per_tenant_and_in_all(gateway):
    stub = pb_grpc.GatewayStub(grpc.insecure_channel(gateway.address))
    streams = [Stalled(stub, "t0") for _ in range(4)]
    time.sleep(1.0)
    fifth = Stalled(stub, "t0")
    assert fifth.code(timeout=10) == "RESOURCE_EXHAUSTED"
    # Another tenant still puts and computes; health answers at once.
    x = np.arange(2 * MiB, dtype=np.float32)
    assert put(stub, x, _token("t1"))
    # Up to 16 streams in all: three tenants more fill it, the 17th is refused.
    streams += [Stalled(stub, t) for t in ("t2", "t3", "t4") for _ in range(4)]
    time.sleep(1.0)
    over = Stalled(stub, "t5")
    assert over.code(timeout=10) == "RESOURCE_EXHAUSTED"
    worst = max(_health_seconds(gateway.address) for _ in range(5))
    print(f"\nhealth check with 16 streams stalled: worst {worst * 1000:.0f} ms")
    assert worst < 1.0
    for s in streams + [fifth, over]:
        s.end()
    assert all(s.code() in ("CANCELLED", "INVALID_ARGUMENT") for s in streams)
