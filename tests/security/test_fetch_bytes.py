"""Issue 15, item 10 (its last part): what open fetches hold in the gateway, all together.

Each FetchTensor holds the stored chunk it is sending (32 MiB) until its client has taken
that chunk's last message; 16 open fetches (4 tenants × 4 streams, the bounds on streams)
whose clients read one message and stop held 16 chunks and what the transports buffer,
about 1 GiB of gateway RSS, for as long as the clients lived (or the idle timeout).
Now the bytes all fetches hold are bounded (--fetch-bytes-in-flight, 128 MiB, half of it
per tenant; 96 MiB here): a fetch without room waits for it, first come first served, and
is served once others finish or are cancelled. Measured at 128 MiB: +302 MiB (4 fetches
sending, 12 waiting); with the bound lifted, +609 MiB within the same 3 s (13 sending)
and rising.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from procs import start_redis, stop
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.store import RedisTensorStore
from sectools import Procs, as_tenant, code_of

pytestmark = pytest.mark.integration

MiB = 1 << 20
BIG = 256 * MiB
IDLE = 4  # --stream-idle-timeout here (default 30)
TOKENS = {f"tok-fetch-bytes-{t}-0123456789": t for t in ("ann", "ben", "cat", "dan")}


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def test_open_fetches_hold_a_bounded_number_of_bytes(tmp_path):
    redis = start_redis()
    procs = Procs(redis, tmp_path)
    channels = []
    try:
        gw = procs.gateway("--tokens", ",".join(f"{k}={t}" for k, t in TOKENS.items()),
                           "--stream-idle-timeout", str(IDLE),
                           "--fetch-bytes-in-flight", str(96 * MiB))  # 3 chunks, 1 a tenant
        x = np.random.default_rng(0).standard_normal(BIG // 4, dtype=np.float32)
        msg = codec.encode_array(x)
        del x
        for tenant in TOKENS.values():  # each tenant's own copy, written past the gateway
            RedisTensorStore(redis.url).put(tenant, msg)
        base = _rss(gw.popen.pid)
        stalled, firsts, lock = [], [], threading.Lock()

        def stall(token):
            ch = grpc.insecure_channel(gw.address, options=[
                ("grpc.max_receive_message_length", -1)])
            it = pb_grpc.GatewayStub(ch).FetchTensor(pb.FetchTensorRequest(hash=msg.hash),
                                                      metadata=as_tenant(token), timeout=60)
            with lock:
                channels.append(ch)
                stalled.append(it)
            try:
                next(it)  # one message, then nothing (a fetch without room waits here)
                firsts.append(time.monotonic())
            except grpc.RpcError:
                pass

        threads = [threading.Thread(target=stall, args=(token,), daemon=True)
                   for token in TOKENS for _ in range(4)]
        for t in threads:
            t.start()
        most, end = 0, time.monotonic() + 3.0
        while time.monotonic() < end:
            most = max(most, _rss(gw.popen.pid) - base)
            time.sleep(0.01)
        print(f"\n16 stalled fetches: {len(firsts)} got a first message; gateway RSS "
              f"+{most / MiB:.0f} MiB")
        assert most < 350 * MiB, (most / MiB, len(firsts))  # ~70 MiB per fetch sending
        # Three send at a time (one per tenant); a stalled one whose chunk the transports
        # took whole (their windows grow under load) gives its share back for another.
        assert firsts, "no fetch was served"
        # The stalled ones are cancelled when idle; the waiting ones then get their turn,
        # and a whole fetch after them gives the same bytes.
        for ch in channels:
            ch.close()
        time.sleep(IDLE + 2)
        token = next(iter(TOKENS))
        chunks = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address, options=[
            ("grpc.max_receive_message_length", -1)])).FetchTensor(
            pb.FetchTensorRequest(hash=msg.hash), metadata=as_tenant(token), timeout=60)
        code, details = code_of(lambda: chunks and None)
        back = codec.from_chunks(chunks, max_bytes=BIG)
        assert back.hash == msg.hash and back.data == msg.data, (code, details)
    finally:
        for ch in channels:
            ch.close()
        procs.close()
        stop(redis.proc)


def test_a_waiting_share_gets_the_next_turn_and_a_tenant_at_most_half():
    """In process: a fetch that gives a chunk back and asks again queues behind one already
    waiting (none starves), one tenant holds at most half, and a wait ends in
    RESOURCE_EXHAUSTED (FetchBusyError) after its bound."""
    from remotegrad.server.fetch import FetchBusyError, InFlight

    room = InFlight(4, wait=0.3)
    order, kept = [], room.hold("a", 2)  # kept: entered by the waiter, never left
    with room.hold("a", 2):
        waiter = threading.Thread(target=lambda: kept.__enter__() or order.append("waiter"))
        waiter.start()
        time.sleep(0.05)
        with room.hold("b", 2):  # another tenant's half is free
            order.append("b")
    # "a" gave its share back; asking again now, it comes after the waiter.
    with pytest.raises(FetchBusyError):
        with room.hold("a", 2):
            order.append("again")
    waiter.join(1)
    assert order == ["b", "waiter"], order
