"""The per-tenant rate limit holds across gateways: two real `remotegrad gateway` processes
on one redis-server draw from one bucket per tenant, so together they admit what one would.
While Redis is down each gateway falls back to its own bucket (limited, not open, not
failing), and shares again once Redis is back.

HasTensors with no digests is the probe call: rate-limited like Compute, and answered
without a worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import grpc
import pytest

from procs import free_port, start_redis, stop, wait_until
from remotegrad.proto import keys
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

RATE, BURST = 2.0, 10
TOKENS = {"alice": "token-alice", "bob": "token-bob"}


def _gateway(redis_url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               REMOTEGRAD_TOKENS=",".join(f"{t}={n}" for n, t in TOKENS.items()))
    proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "gateway", "--port",
                             str(port), "--redis-url", redis_url, "--rate-limit", str(RATE),
                             "--rate-burst", str(BURST)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


@pytest.fixture
def two_gateways():
    redis = start_redis()
    procs = []
    try:
        for _ in range(2):
            procs.append(_gateway(redis.url))
        stubs = [pb_grpc.GatewayStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
                 for _, port in procs]
        for stub in stubs:
            wait_until(lambda stub=stub: _call(stub, "bob") == "OK", "gateway", timeout=60,
                       procs=[p for p, _ in procs])
        yield redis, stubs
    finally:
        for p, _ in procs:
            stop(p)
        stop(redis.proc)


def _call(stub, tenant: str) -> str:
    try:
        stub.HasTensors(pb.HasTensorsRequest(), timeout=5,
                        metadata=(("authorization", f"Bearer {TOKENS[tenant]}"),))
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def _burst(stubs, tenant: str, n: int = 40) -> tuple[list[dict], float, float]:
    """n calls alternating between the gateways: {OK: count, ...} per gateway, the elapsed
    seconds, and the slowest call."""
    counts, slowest = [{}, {}], 0.0
    start = time.monotonic()
    for i in range(n):
        t = time.monotonic()
        code = _call(stubs[i % 2], tenant)
        slowest = max(slowest, time.monotonic() - t)
        counts[i % 2][code] = counts[i % 2].get(code, 0) + 1
    return counts, time.monotonic() - start, slowest


def _admitted_at_most(elapsed: float) -> float:
    return BURST + RATE * elapsed + 1


def test_two_gateways_share_each_tenants_bucket(two_gateways):
    _, stubs = two_gateways
    counts, elapsed, _ = _burst(stubs, "alice")
    ok = sum(c.get("OK", 0) for c in counts)
    print(f"\nshared: {ok} of 40 admitted in {elapsed:.2f}s across 2 gateways, {counts}")
    assert set().union(*counts) <= {"OK", "RESOURCE_EXHAUSTED"}, counts
    assert BURST <= ok <= _admitted_at_most(elapsed), counts  # per gateway: 2 x BURST
    assert all(c.get("RESOURCE_EXHAUSTED") for c in counts), counts  # both refuse
    assert _call(stubs[0], "bob") == "OK"  # another tenant's bucket is its own


def test_local_fallback_while_redis_is_down_then_shared_again(two_gateways):
    redis, stubs = two_gateways
    stop(redis.proc)
    counts, elapsed, slowest = _burst(stubs, "alice")
    print(f"\nRedis down: {counts} in {elapsed:.2f}s, slowest call {slowest:.3f}s")
    assert set().union(*counts) <= {"OK", "RESOURCE_EXHAUSTED"}, counts  # no call fails
    for c in counts:  # each gateway limits by itself: neither open nor closed
        assert BURST <= c.get("OK", 0) <= _admitted_at_most(elapsed), counts
    assert slowest < 2.0
    back = start_redis(redis.port)
    try:
        time.sleep(1.5)  # the fallback tries Redis again after a second
        wait_until(lambda: all(_call(s, "bob") == "OK" for s in stubs), "shared again")
        counts, elapsed, _ = _burst(stubs, "alice")
        ok = sum(c.get("OK", 0) for c in counts)
        print(f"Redis back: {ok} of 40 admitted in {elapsed:.2f}s, {counts}")
        assert BURST <= ok <= _admitted_at_most(elapsed), counts
        assert back.client().exists(keys.rate_key("alice"))
    finally:
        stop(back.proc)
        redis.proc = back.proc  # the fixture stops the one running
