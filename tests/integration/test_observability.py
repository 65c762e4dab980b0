"""What an operator sees: one request id on the gateway's and the worker's log lines of a
call, Prometheus metrics from every process, and `remotegrad status`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import grpc
import numpy as np
import pytest

from procs import free_port, start_cluster, start_redis, stop, wait_until
from remotegrad.proto import codec
from remotegrad.proto.codec import WireNode


@pytest.fixture
def logged_cluster(tmp_path):
    redis = start_redis()
    log = open(tmp_path / "cluster.log", "w+b")
    cluster = start_cluster(redis, 1, "--log-level", "INFO", stderr=log)
    yield cluster, tmp_path / "cluster.log"
    cluster.close()
    stop(redis.proc)
    log.close()


def _failing_request():
    """Integer division by zero: valid by shape, fails when run on the worker."""
    x = np.array([2, 3], dtype=np.int64)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "int64", "shape": (2,)}),
             WireNode(1, "const", (), {"value": 0}),
             WireNode(2, "div", (0, 1), {"rounding_mode": "floor"})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [2],
                                request_id="rid-observe-42")


def test_request_id_travels_from_client_to_worker_logs(logged_cluster):
    cluster, path = logged_cluster
    with pytest.raises(grpc.RpcError):
        cluster.stub().Compute(_failing_request(), timeout=10,
                               metadata=(("x-request-id", "rid-observe-42"),))

    def lines():
        return [json.loads(line) for line in path.read_text().splitlines()
                if line.startswith("{") and "rid-observe-42" in line]
    wait_until(lambda: {e["logger"] for e in lines()} >= {"remotegrad.gateway",
                                                          "remotegrad.worker"},
               "log lines from gateway and worker", timeout=10)
    assert all(e["request_id"] == "rid-observe-42" for e in lines())


@pytest.mark.slow
def test_every_process_serves_prometheus_metrics():
    redis = start_redis()  # its own: the registry holds this test's worker alone
    cluster = start_cluster(redis, 0)
    port = free_port()
    worker = cluster.add_worker("--metrics-port", str(port))
    try:
        cluster.wait_workers(1)
        wait_until(lambda: cluster.metric("remotegrad_workers") == 1, "worker gauge")
        wait_until(lambda: b"remotegrad_calls_total" in urllib.request.urlopen(
            f"http://127.0.0.1:{port}/metrics", timeout=2).read(), "worker metrics")
    finally:
        stop(worker)
        cluster.close()
        stop(redis.proc)


def test_status_prints_workers_and_cache_ratio(cluster):
    out = subprocess.run([sys.executable, "-m", "remotegrad.server.cli", "status",
                          "--address", cluster.address], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"gateway  {cluster.address}" in out.stdout
    assert "workers  2" in out.stdout
    assert "hit ratio" in out.stdout
