"""The gateway ends client connections after --max-connection-age, so that clients
reconnect (and a DNS name's new gateways get their share); calls never fail for it."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from procs import start_cluster, start_redis, stop

from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode

pytestmark = pytest.mark.integration


def _request(v: float):
    x = np.full(3, v, dtype=np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (3,)}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [1])


@pytest.mark.slow
def test_connections_are_renewed_and_no_call_fails():
    redis = start_redis()
    cluster = start_cluster(redis, 1, "--max-connection-age", "1")
    states: list[grpc.ChannelConnectivity] = []
    lock = threading.Lock()

    def seen(state):
        with lock:
            states.append(state)
    channel = grpc.insecure_channel(cluster.address)
    channel.subscribe(seen, try_to_connect=True)
    try:
        stub = pb_grpc.GatewayStub(channel)
        failed, calls = [], 0
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            v = float(calls % 7)
            try:
                (got,) = codec.decode_response(stub.Compute(_request(v), timeout=10,
                                                            wait_for_ready=True))
                assert float(got) == 3 * v
            except grpc.RpcError as e:
                failed.append(e.code())
            calls += 1
            time.sleep(0.05)
        with lock:
            ready = states.count(grpc.ChannelConnectivity.READY)
        assert not failed, failed
        assert calls > 20
        assert ready >= 3, f"the connection was not renewed: {states}"
    finally:
        channel.unsubscribe(seen)
        channel.close()
        cluster.close()
        stop(redis.proc)
