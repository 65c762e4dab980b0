"""Real processes on loopback ports for the fault scenarios: redis-server, a gateway,
workers, and client processes that drive a steady load through the SDK.

Every process is started here, remembered by its pid, and stopped here by that pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

PY = sys.executable
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, timeout: float = 30.0, procs=()) -> float:
    """Poll `check` until true; returns the seconds it took."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.args[:4]} exited with {p.returncode}")
        try:
            if check():
                return time.monotonic() - start
        except Exception as e:  # noqa: BLE001  (not up yet)
            last = e
        time.sleep(0.02)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        except ProcessLookupError:
            pass
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_all(procs: list[subprocess.Popen], timeout: float = 15.0) -> None:
    """SIGTERM to each (by pid), then wait for them together."""
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def rss_bytes(pid: int) -> int:
    """Resident memory of a live process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def metric(port: int, name: str, **labels: str) -> float:
    """Sum of the samples of `name` (matching `labels`) on a /metrics endpoint."""
    from prometheus_client.parser import text_string_to_metric_families
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    total = 0.0
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    port: int = 0
    metrics_port: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid


def start_redis(port: int | None = None, *extra: str, maxmemory: str = "1gb") -> Proc:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not on PATH")
    port = port or free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--maxmemory", maxmemory, "--maxmemory-policy", "allkeys-lru", *extra]
    proc = Proc("redis", subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL), port)
    if "--tls-port" not in extra:
        import redis
        client = redis.Redis(port=port, socket_connect_timeout=1)
        wait_until(client.ping, "redis-server", procs=[proc.popen])
        client.close()
    return proc


@dataclass
class Cluster:
    """Redis, a gateway and workers, each a real process of its own."""

    redis: Proc
    gateway: Proc | None = None
    workers: list[Proc] = field(default_factory=list)
    gateway_args: tuple[str, ...] = ()
    worker_args: tuple[str, ...] = ()
    heartbeat: float = 0.5
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rg-faults-")))
    env: dict = field(default_factory=lambda: dict(os.environ, PYTHONUNBUFFERED="1"))
    redis_url: str = ""
    credentials: grpc.ChannelCredentials | None = None  # TLS to the gateway
    metadata: tuple = ()  # e.g. a token, for ClusterStatus

    @property
    def url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gateway.port}"

    def _log(self, name: str):
        return open(self.log_dir / f"{name}.log", "ab")

    def start_gateway(self, port: int | None = None) -> Proc:
        port, mport = port or free_port(), free_port()
        argv = [PY, "-m", "remotegrad.server.cli", "gateway", "--port", str(port),
                "--redis-url", self.url, "--heartbeat", str(self.heartbeat),
                "--metrics-port", str(mport), "--log-level", "WARNING", *self.gateway_args]
        log = self._log("gateway")
        self.gateway = Proc("gateway", subprocess.Popen(argv, env=self.env, stdout=log,
                                                        stderr=log), port, mport)
        return self.gateway

    def add_worker(self) -> Proc:
        mport = free_port()
        argv = [PY, "-m", "remotegrad.server.cli", "worker", "--port", "0", "--redis-url",
                self.url, "--heartbeat", str(self.heartbeat), "--metrics-port", str(mport),
                "--log-level", "WARNING", *self.worker_args]
        log = self._log(f"worker{len(self.workers)}")
        w = Proc(f"worker{len(self.workers)}",
                 subprocess.Popen(argv, env=self.env, stdout=log, stderr=log), 0, mport)
        self.workers.append(w)
        return w

    def channel(self) -> grpc.Channel:
        if self.credentials is not None:
            return grpc.secure_channel(self.address, self.credentials)
        return grpc.insecure_channel(self.address)

    def status(self) -> pb.ClusterStatusResponse:
        with self.channel() as ch:
            return pb_grpc.GatewayStub(ch).ClusterStatus(pb.ClusterStatusRequest(), timeout=5,
                                                         metadata=self.metadata)

    def wait_workers(self, n: int, timeout: float = 30.0) -> float:
        return wait_until(lambda: len(self.status().workers) == n, f"{n} workers",
                          timeout=timeout, procs=[self.gateway.popen])

    def metric(self, name: str, **labels: str) -> float:
        return metric(self.gateway.metrics_port, name, **labels)

    def processes(self) -> list[Proc]:
        return [p for p in [self.redis, self.gateway, *self.workers]
                if p is not None and p.popen.poll() is None]

    def close(self) -> None:
        stop_all([p.popen for p in [*self.workers, self.gateway, self.redis] if p is not None])


def start_cluster(workers: int = 2, gateway_args=(), worker_args=(),
                  heartbeat: float = 0.5, credentials=None, metadata=(),
                  redis_maxmemory: str = "1gb") -> Cluster:
    c = Cluster(start_redis(maxmemory=redis_maxmemory), gateway_args=tuple(gateway_args),
                worker_args=tuple(worker_args), heartbeat=heartbeat, credentials=credentials,
                metadata=tuple(metadata))
    try:
        c.start_gateway()
        for _ in range(workers):
            c.add_worker()
        c.wait_workers(workers)
    except BaseException:
        c.close()
        raise
    return c


# --- the load: client processes through the SDK ---------------------------------------

@dataclass
class Call:
    client: int
    start: float  # wall-clock seconds (time.time()), comparable across processes
    latency: float
    ok: bool
    error: str = ""


class Load:
    """`clients` processes (scripts/faults/client.py), each making SDK calls at `rate`
    calls per second (0: back to back) until stopped or `max_seconds` passed."""

    def __init__(self, address: str, clients: int = 3, rate: float = 0.0,
                 max_seconds: float = 120.0, timeout: float = 15.0, extra_env=None,
                 size: int = 64, layers: int = 4) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rg-load-"))
        self.args = (address, clients, rate, max_seconds, timeout, size, layers)
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Load:
        address, clients, rate, max_seconds, timeout, size, layers = self.args
        for i in range(clients):
            out = self.dir / f"client{i}.jsonl"
            self.procs.append(subprocess.Popen(
                [PY, str(HERE / "client.py"), address, str(out), "--client", str(i),
                 "--rate", str(rate), "--max-seconds", str(max_seconds), "--timeout",
                 str(timeout), "--size", str(size), "--layers", str(layers)],
                env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.dir / f"c{i}.err", "wb")))
        # Running once every client has made a call.
        wait_until(lambda: all((self.dir / f"client{i}.jsonl").exists() and
                               (self.dir / f"client{i}.jsonl").stat().st_size > 0
                               for i in range(clients)), "load clients", timeout=60,
                   procs=self.procs)
        self.started = time.time()
        return self

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # finish the call in progress, then exit
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __exit__(self, *exc) -> None:
        self.stop()

    def calls(self) -> list[Call]:
        out = []
        for f in sorted(self.dir.glob("client*.jsonl")):
            for line in f.read_text().splitlines():
                if line.strip():
                    out.append(Call(**json.loads(line)))
        return sorted(out, key=lambda c: c.start)


def summary(calls: list[Call], around: float | None = None, before: float = 1.0,
            after: float = 5.0) -> dict:
    """Calls made and failed; worst and median latency overall and around a fault."""
    lat = sorted(c.latency for c in calls)
    out = {"calls": len(calls), "failed": sum(not c.ok for c in calls),
           "median_s": round(lat[len(lat) // 2], 4) if lat else None,
           "worst_s": round(lat[-1], 3) if lat else None,
           "errors": sorted({c.error for c in calls if not c.ok})[:5]}
    if around is not None:
        near = [c for c in calls if around - before <= c.start <= around + after
                or c.start <= around <= c.start + c.latency]
        out["calls_around_fault"] = len(near)
        out["worst_around_fault_s"] = round(max((c.latency for c in near), default=0), 3)
    return out


def print_figures(name: str, figures: dict) -> None:
    print(f"[{name}] " + json.dumps(figures, sort_keys=True), flush=True)
