"""Issue 15, item 5: memory before authentication. gRPC reads a whole unary message before
any interceptor sees the call, so the gateway's receive limit is what bounds what an
unauthenticated caller (or a health probe) makes it allocate. The default is 64 MiB, and
gRPC refuses a larger message from its length prefix, before buffering it.

Before (a 1 GiB default): three concurrent 512 MiB unauthenticated Compute calls took the
gateway from 73 MB to 2.7 GB of RSS (VmHWM) before they were refused UNAUTHENTICATED.
"""

from __future__ import annotations

import threading

import grpc
import pytest

from procs import start_redis, stop
from sectools import Procs, _serving, code_of

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


def _concurrently(address: str, method: str, payload: bytes, n: int) -> list[str]:
    codes: list[str] = []

    def one() -> None:
        with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", -1)]) \
                as ch:
            codes.append(code_of(lambda: ch.unary_unary(method)(payload, timeout=60))[0])
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return codes


def test_large_unauthenticated_messages_are_refused_unbuffered(procs):
    gw = procs.gateway("--tokens", "tok-limits-0123456789=alice")
    before = _peak_rss(gw.popen.pid)
    payload = b"\0" * (160 * MiB)
    for method in ("/remotegrad.v1.Gateway/Compute", "/remotegrad.v1.Gateway/HasTensors",
                   "/grpc.health.v1.Health/Check"):
        assert _concurrently(gw.address, method, payload, 3) == ["RESOURCE_EXHAUSTED"] * 3
    grown = _peak_rss(gw.popen.pid) - before
    print(f"\ngateway peak RSS grew {grown / MiB:.1f} MiB over 9 refused 160 MiB messages")
    assert grown < 64 * MiB, grown
    assert _serving(gw.address)
