"""Issue 17 item 3: gateways see workers' load from the heartbeat.

Each worker's heartbeat carries the calls it is running (proto/registry.py), and a
gateway ranks workers by its own calls on them plus the others' (server/pool.py). Before,
each gateway counted only its own in-flight calls, so several gateways sharing workers
could all send to the same busy one.

Here gateway A (a static list: worker 1 only) keeps worker 1 busy with slow calls; gateway
B, which shares Redis with both workers and has no call of its own anywhere, then sends
every call to worker 2 while A's calls run (without the heartbeat's load the two workers
tie for B and its calls alternate).
"""

from __future__ import annotations

import subprocess
import time

import grpc
import pytest

from procs import PY, free_port, start_cluster, start_redis, stop, wait_until
from raw_requests import quick_request, slow_request
from remotegrad.proto import registry
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_a_gateway_avoids_a_worker_another_gateway_keeps_busy():
    redis = start_redis()
    b = start_cluster(redis, 2)  # gateway B and both workers (heartbeat 0.5 s)
    port = free_port()
    try:
        w1, w2 = sorted(registry.workers(redis.client()))
        a = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "gateway", "--port",
                              str(port), "--worker-addrs", w1],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            stub_a = pb_grpc.GatewayStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
            wait_until(lambda: len(stub_a.ClusterStatus(pb.ClusterStatusRequest(),
                                                        timeout=2).workers) == 1,
                       "gateway A", procs=[a])
            slow = [stub_a.Compute.future(slow_request(), timeout=120) for _ in range(2)]
            wait_until(lambda: registry.workers(redis.client())[w1].get("inflight") == 2,
                       "worker 1's heartbeat reports A's two calls", timeout=30)
            time.sleep(1.0)  # two of B's registry reads (every 0.5 s) since
            stub_b = b.stub()
            went = []  # B's calls made while both of A's slow calls still run
            for i in range(8):
                if any(f.done() for f in slow):
                    break
                went.append(stub_b.Compute(quick_request(i), timeout=30).worker)
            print(f"\nB's calls while A's two slow calls ran went to {went}")
            assert len(went) >= 3, "the slow calls ended too soon to tell"
            assert went == [w2] * len(went)
            for f in slow:
                f.cancel()
            # Once worker 1 is idle again (and says so), B uses both again.
            wait_until(lambda: registry.workers(redis.client())[w1].get("inflight") == 0,
                       "worker 1 idle", timeout=60)
            fresh = iter(range(100, 200))  # new graphs: no cache hits
            wait_until(lambda: stub_b.Compute(quick_request(next(fresh)), timeout=30).worker == w1,
                       "B back on worker 1", timeout=10)
        finally:
            stop(a)
    finally:
        b.close()
        stop(redis.proc)


def test_the_heartbeat_carries_load_and_capacity():
    redis = start_redis()
    c = start_cluster(redis, 1)
    try:
        (info,) = registry.workers(redis.client()).values()
        assert info["inflight"] == 0 and info["capacity"] == 4  # --max-inflight's default
    finally:
        c.close()
        stop(redis.proc)
