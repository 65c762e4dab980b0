"""Many gateways behind one name (issue 17): the SDK's channel balances per call
(round_robin) over every address of its target, as over a Kubernetes headless Service.
Three real gateways, one worker and one redis-server on loopback; the target lists the
three as gRPC's `ipv4:` syntax does. Calls spread evenly (counted by each gateway's own
metrics), and when a gateway stops (SIGTERM, then another SIGKILLed) its share moves to the
others while calls keep running, with no call failing."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import numpy as np
import pytest

import remotegrad as torch
from procs import PY, Cluster, free_port, start_redis, stop, wait_until

pytestmark = pytest.mark.integration

CALLS = "remotegrad_calls_total"
N = 150


def _gateway(redis, port: int, metrics_port: int) -> subprocess.Popen:
    # --local-max-nodes 0: every graph goes through the worker, as a real graph would.
    return subprocess.Popen(
        [PY, "-m", "remotegrad.server.cli", "gateway", "--port", str(port),
         "--redis-url", redis.url, "--heartbeat", "0.5", "--metrics-port", str(metrics_port),
         "--local-max-nodes", "0", "--stop-grace", "4"],
        env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.DEVNULL)


@pytest.fixture
def gateways():
    """Three gateways sharing one Redis and one worker: a Cluster per gateway. A Redis of
    their own: the suite's shared one has other tests' workers registered."""
    redis_server = start_redis()
    procs = [redis_server.proc]
    try:
        clusters = []
        for _ in range(3):
            port, metrics_port = free_port(), free_port()
            proc = _gateway(redis_server, port, metrics_port)
            procs.append(proc)
            clusters.append(Cluster(redis_server, proc, port, env=dict(os.environ),
                                    metrics_port=metrics_port))
        procs.append(clusters[0].add_worker())
        for c in clusters:
            c.wait_workers(1)
        yield clusters
    finally:
        for p in reversed(procs):  # the workers and gateways, then Redis
            stop(p)
        torch.connect("local")


def _computes(cluster: Cluster) -> float:
    try:
        return cluster.metric(CALLS, method="Compute", code="OK")
    except OSError:  # stopped: its share is what it had
        return float("nan")


def _call(i: int) -> None:
    x = torch.from_numpy(np.full(4, float(i), dtype=np.float32))
    assert float((x * 2.0).sum()) == 8.0 * i  # each value its own graph: no cache hit


def test_calls_spread_evenly_over_every_gateway(gateways):
    torch.connect("ipv4:" + ",".join(c.address for c in gateways))
    before = [_computes(c) for c in gateways]
    for i in range(N):
        _call(i)
    counts = [_computes(c) - b for c, b in zip(gateways, before)]
    print(f"calls per gateway: {counts}")  # shown with -s
    assert sum(counts) == N
    # pick_first would give 150/0/0; round_robin gives about 50 each (first calls may go
    # to whichever gateway connected first).
    assert min(counts) >= N / 3 * 0.6, counts


def _load(stop_event: threading.Event, done: list[int], failed: list[BaseException]) -> None:
    i = 1000
    while not stop_event.is_set() and i < 100_000:  # bounded either way
        try:
            _call(i)
            done.append(i)
        except BaseException as e:  # noqa: BLE001  (a failed call is what the test counts)
            failed.append(e)
        i += 1


def test_a_stopped_gateways_share_moves_to_the_others_with_no_failed_call(gateways):
    torch.connect("ipv4:" + ",".join(c.address for c in gateways))
    stop_event, done, failed = threading.Event(), [], []
    start = [_computes(c) for c in gateways]
    thread = threading.Thread(target=_load, args=(stop_event, done, failed), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(done) >= 30, "calls before any stop", timeout=60)
        assert all(_computes(c) > s for c, s in zip(gateways, start)), "not spread"
        # A graceful stop: NOT_SERVING, 1 s more of serving, then its calls drain.
        gateways[2].gateway.send_signal(signal.SIGTERM)
        gateways[2].gateway.wait(timeout=15)
        at_stop = len(done)
        wait_until(lambda: len(done) >= at_stop + 30, "calls after a graceful stop",
                   timeout=60)
        # A crash: calls in flight on it fail UNAVAILABLE and are retried on the other.
        gateways[1].gateway.send_signal(signal.SIGKILL)
        gateways[1].gateway.wait(timeout=15)
        before = _computes(gateways[0])
        at_kill = len(done)
        wait_until(lambda: len(done) >= at_kill + 30, "calls after a crash", timeout=60)
    finally:
        stop_event.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert failed == [], failed[:3]
    # Every call after the crash was answered by the survivor (one may have been counted
    # there just before `before` was read and by the client just after).
    assert _computes(gateways[0]) - before >= len(done) - at_kill - 1
