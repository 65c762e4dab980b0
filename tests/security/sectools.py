"""Helpers for the security tests: a gateway and workers as real processes on loopback
(sharing a redis-server from tests/procs.py), their logs in files, raw gRPC calls as a
tenant (a token) or as any local process would make them (no credentials at all).

Every process is started here and stopped by its pid (procs.stop).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from procs import PY, free_port, stop, wait_until
from remotegrad.proto import codec, registry
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode

SECRET = "s3cret-for-tests-0123456789abcdef"


def env(secret: str | None = None) -> dict:
    out = {k: v for k, v in os.environ.items() if not k.startswith("REMOTEGRAD_")}
    out["PYTHONUNBUFFERED"] = "1"
    out["REMOTEGRAD_LOCAL_MAX_NODES"] = "0"  # through the workers (see tests/conftest.py)
    if secret:
        out["REMOTEGRAD_WORKER_SECRET"] = secret  # as `cluster up` passes it: not in argv
    return out


@dataclass
class Proc:
    popen: subprocess.Popen
    address: str
    log: Path

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Procs:
    """What one test module started, stopped together in reverse order."""

    redis: object
    folder: Path
    started: list[Proc] = field(default_factory=list)

    def gateway(self, *args: str, secret: str | None = None,
                credentials: grpc.ChannelCredentials | None = None) -> Proc:
        """`credentials`: how to reach it, when it serves TLS."""
        port = free_port()
        log = self.folder / f"gateway-{port}.log"
        popen = subprocess.Popen(
            [PY, "-m", "remotegrad.server.cli", "gateway", "--port", str(port),
             "--redis-url", self.redis.url, "--heartbeat", "0.5", "--stop-grace", "2",
             *args],
            env=env(secret), stdout=subprocess.DEVNULL, stderr=log.open("w"))
        proc = Proc(popen, f"127.0.0.1:{port}", log)
        self.started.append(proc)
        wait_until(lambda: _serving(proc.address, credentials), "gateway", timeout=60,
                   procs=[popen])
        return proc

    def worker(self, *args: str, secret: str | None = None) -> Proc:
        log = self.folder / f"worker-{len(self.started)}.log"
        popen = subprocess.Popen(
            [PY, "-m", "remotegrad.server.cli", "worker", "--port", "0", "--redis-url",
             self.redis.url, "--heartbeat", "0.5", "--stop-grace", "2", *args],
            env=env(secret), stdout=subprocess.DEVNULL, stderr=log.open("w"))
        proc = Proc(popen, "", log)
        self.started.append(proc)
        proc.address = _registered(self.redis.client(), popen)
        return proc

    def close(self) -> None:
        for proc in reversed(self.started):
            stop(proc.popen)
        self.started.clear()


def channel(address: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    return grpc.secure_channel(address, credentials) if credentials else \
        grpc.insecure_channel(address)


def _serving(address: str, credentials=None) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with channel(address, credentials) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                      timeout=1)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _registered(client, popen: subprocess.Popen, timeout: float = 60.0) -> str:
    """The address a worker process registered under (its record carries its pid)."""
    found: list[str] = []

    def look() -> bool:
        for info in registry.workers(client).values():  # broken records left out
            if info.get("pid") == popen.pid:
                found.append(info["address"])
                return True
        return False
    wait_until(look, "worker registered", timeout=timeout, procs=[popen])
    return found[0]


def as_tenant(token: str | None) -> tuple:
    return (("authorization", f"Bearer {token}"),) if token else ()


def code_of(fn) -> tuple[str, str]:
    """(status name, details) of a call; ("OK", "") when it succeeds."""
    try:
        fn()
        return "OK", ""
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""


def sum_request(x: np.ndarray, inline: bool = True, digest: str | None = None,
                data: np.ndarray | None = None) -> pb.ComputeRequest:
    """sum(x) with x a leaf named `digest` (its own hash by default); inline, the tensor
    sent carries `data`'s bytes (x's by default) under that name."""
    h = digest or codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": x.dtype.name, "shape": x.shape}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    tensors = []
    if inline:
        payload = x if data is None else data
        tensors = [pb.TensorData(dtype=x.dtype.name, shape=x.shape,
                                 data=np.ascontiguousarray(payload).tobytes(), hash=h)]
    return codec.encode_request(nodes, tensors, [1])


def value(resp: pb.ComputeResponse) -> float:
    return float(codec.decode_array(resp.results[0]))


def put(stub: pb_grpc.GatewayStub, x: np.ndarray, token: str | None) -> str:
    msg = codec.encode_array(x)
    stub.PutTensor(iter(codec.to_chunks(msg)), metadata=as_tenant(token), timeout=30)
    return msg.hash


def wait_for_workers(stub: pb_grpc.GatewayStub, n: int, token: str | None) -> None:
    wait_until(lambda: len(stub.ClusterStatus(pb.ClusterStatusRequest(), timeout=2,
                                              metadata=as_tenant(token)).workers) == n,
               f"{n} workers seen by the gateway", timeout=60)


def until(check, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s")
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time process `pid` has used (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def running(worker: Proc) -> int:
    """The calls a worker says it is running (its registry record, every heartbeat); the
    test sets `worker.redis` to the redis-server it registers in."""
    return registry.workers(worker.redis.client())[worker.address]["inflight"]


def cpu_until_stopped(worker: Proc, what: str, timeout: float = 20.0) -> float:
    """CPU seconds the worker spends from now until its record counts no call running.

    What a cancelled op costs after its deadline is read in CPU time, not wall time: on a
    shared machine another job's load stretches a block's wall time (a 2.5 s wall bound
    failed once in CI), never its CPU time, and an op that ran on after its deadline would
    cost its remaining seconds of BLAS in either."""
    before = cpu_seconds(worker.popen.pid)
    until(lambda: running(worker) == 0, what, timeout=timeout)
    return cpu_seconds(worker.popen.pid) - before
