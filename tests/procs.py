"""Helpers that start real processes on loopback ports: redis-server, workers, a gateway.

Every process is started here and stopped here by pid; nothing is ever stopped by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import grpc
import pytest

from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, timeout: float = 30.0, procs=()) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.args[:4]} exited with {p.returncode}")
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001  (not up yet)
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Redis:
    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis
        return redis.Redis.from_url(self.url)


def start_redis(port: int | None = None) -> Redis:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not on PATH (.ci/run installs it)")
    port = port or free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--maxmemory", "2gb",
                             "--maxmemory-policy", "allkeys-lru"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = Redis(proc, port)
    wait_until(lambda: r.client().ping(), "redis-server", procs=[proc])
    return r


@dataclass
class Cluster:
    """A gateway and workers sharing one Redis, each a real process."""

    redis: Redis
    gateway: subprocess.Popen
    port: int
    workers: list[subprocess.Popen] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    metrics_port: int = 0
    stderr: object = None  # where the processes' logs go (None: this process's stderr)

    def metric(self, name: str, **labels: str) -> float:
        """A sample from the gateway's Prometheus endpoint (0 when absent)."""
        import urllib.request
        from prometheus_client.parser import text_string_to_metric_families
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                      timeout=5).read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    return sample.value
        return 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stub(self) -> pb_grpc.GatewayStub:
        return pb_grpc.GatewayStub(grpc.insecure_channel(self.address))

    def status(self) -> pb.ClusterStatusResponse:
        with grpc.insecure_channel(self.address) as ch:
            return pb_grpc.GatewayStub(ch).ClusterStatus(pb.ClusterStatusRequest(), timeout=5)

    def add_worker(self, *extra: str) -> subprocess.Popen:
        proc = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "worker", "--port", "0",
                                 "--redis-url", self.redis.url, "--heartbeat", "0.5", *extra],
                                env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.workers.append(proc)
        return proc

    def wait_workers(self, n: int, timeout: float = 30.0) -> None:
        wait_until(lambda: len(self.status().workers) == n, f"{n} workers",
                   timeout=timeout, procs=[self.gateway])

    def close(self) -> None:
        for p in self.workers + [self.gateway]:
            stop(p)


def start_cluster(redis: Redis, workers: int = 2, *gateway_args: str,
                  stderr=None) -> Cluster:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    port, metrics_port = free_port(), free_port()
    gw = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "gateway", "--port", str(port),
                           "--redis-url", redis.url, "--heartbeat", "0.5",
                           "--metrics-port", str(metrics_port), *gateway_args],
                          env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    c = Cluster(redis, gw, port, env=env, metrics_port=metrics_port, stderr=stderr)
    try:
        for _ in range(workers):
            c.add_worker()
        c.wait_workers(workers)
    except BaseException:
        c.close()  # never leave a half-started cluster running
        raise
    return c
