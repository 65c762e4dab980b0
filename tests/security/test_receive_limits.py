"""Issue 15, item 5: memory before authentication. The gateway's receive limit (64 MiB by
default) bounds every message: gRPC refuses a larger one from its length prefix, before
buffering it. A call refused at the door (the gateway's token, the worker's secret) reads
none of its message: the refusal takes the request as a stream it never iterates
(proto/peer.py `refusal`), so an unauthenticated caller costs no more than gRPC's
flow-control window, below the limit as well (health checks, open, are bounded by it).

Before (a 1 GiB default): three concurrent 512 MiB unauthenticated Compute calls took the
gateway from 73 MB to 2.7 GB of RSS (VmHWM) before they were refused UNAUTHENTICATED.
"""

from __future__ import annotations

import threading

import grpc
import pytest

from procs import start_redis, stop
from sectools import SECRET, Procs, _serving, code_of

pytestmark = pytest.mark.integration

MiB = 1 << 20


@pytest.fixture
def procs(tmp_path):
    redis = start_redis()
    p = Procs(redis, tmp_path)
    yield p
    p.close()
    stop(redis.proc)


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def _concurrently(address: str, method: str, payload: bytes, n: int,
                  metadata=()) -> list[str]:
    codes: list[str] = []

    def one() -> None:
        with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", -1)]) \
                as ch:
            codes.append(code_of(lambda: ch.unary_unary(method)(
                payload, timeout=60, metadata=metadata))[0])
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return codes


def test_messages_over_the_limit_are_refused_unbuffered(procs):
    """Past the limit, whoever sends it: a tenant with its token, an open health check."""
    gw = procs.gateway("--tokens", "tok-limits-0123456789=alice")
    before = _peak_rss(gw.popen.pid)
    payload = b"\0" * (160 * MiB)
    token = (("authorization", "Bearer tok-limits-0123456789"),)
    for method, metadata in (("/remotegrad.v1.Gateway/Compute", token),
                             ("/remotegrad.v1.Gateway/HasTensors", token),
                             ("/grpc.health.v1.Health/Check", ())):
        assert _concurrently(gw.address, method, payload, 3, metadata) == \
            ["RESOURCE_EXHAUSTED"] * 3
    grown = _peak_rss(gw.popen.pid) - before
    print(f"\ngateway peak RSS grew {grown / MiB:.1f} MiB over 9 refused 160 MiB messages")
    assert grown < 64 * MiB, grown
    assert _serving(gw.address)


def _refused_growth(proc, method: str, size: int) -> tuple[list[str], int]:
    before = _peak_rss(proc.popen.pid)
    codes = _concurrently(proc.address, method, b"\0" * size, 3)
    return codes, _peak_rss(proc.popen.pid) - before


def test_a_refused_call_reads_none_of_its_message(procs):
    """Before, a refused unary call was received whole first: three 300 MiB Execute calls
    without the worker's secret took the worker's VmHWM up 1213 MiB (workers take messages
    of any size: the gateway forwards leaves inline), three 60 MiB Compute calls without a
    token the gateway's up 301 MiB; then +7 and +9 MiB."""
    worker = procs.worker(secret=SECRET)
    gw = procs.gateway("--tokens", "tok-limits-0123456789=alice", secret=SECRET)
    for proc, method, size in ((worker, "/remotegrad.v1.Worker/Execute", 300 * MiB),
                               (gw, "/remotegrad.v1.Gateway/Compute", 60 * MiB)):
        codes, grown = _refused_growth(proc, method, size)
        print(f"\n{method}: 3 refused {size // MiB} MiB messages, VmHWM +{grown / MiB:.1f} MiB")
        assert codes == ["UNAUTHENTICATED"] * 3
        assert grown < 32 * MiB, grown
        assert _serving(proc.address)
