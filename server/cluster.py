"""`remotegrad cluster up`: Redis, a gateway and N workers in the foreground.

The processes are the same commands the compose file runs. The address is printed once
every worker has registered and the gateway reports SERVING; SIGINT/SIGTERM (or any child
dying) stops everything this command started, by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from remotegrad.proto import grpc_server
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM if `cluster up` itself dies, even by SIGKILL (Linux), so
    nothing it started is left running."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Cluster:
    def __init__(self, args) -> None:
        self.args = args
        self.procs: list[subprocess.Popen] = []
        self.redis_url = args.redis_url

    def _spawn(self, argv: list[str], quiet: bool = False, env=None) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent,
                                stdout=subprocess.DEVNULL if quiet else None)
        self.procs.append(proc)
        return proc

    def _common(self) -> list[str]:
        a = self.args
        out = ["--tensor-ttl", str(a.tensor_ttl), "--heartbeat", str(a.heartbeat),
               "--max-inflight", str(a.max_inflight), "--log-level", a.log_level,
               "--memory-cache-bytes", str(a.memory_cache_bytes)]
        for flag in ("tls_cert", "tls_key", "tls_ca"):
            if getattr(a, flag):
                out += ["--" + flag.replace("_", "-"), getattr(a, flag)]
        if a.tls_client_auth:
            out += ["--tls-client-auth", "true"]
        return out + (["--redis-url", self.redis_url] if self.redis_url else [])

    def start_redis(self) -> None:
        exe = shutil.which("redis-server")
        if self.redis_url or exe is None:
            return
        port = free_port()
        self._spawn([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--maxmemory", self.args.redis_maxmemory,
                     "--maxmemory-policy", "allkeys-lru", "--loglevel", "warning"], quiet=True)
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        import redis
        client = redis.Redis.from_url(self.redis_url)
        self._wait(lambda: client.ping(), "redis-server")

    def start_workers(self) -> list[str]:
        a = self.args
        addrs = []
        for i in range(a.workers):
            port = 0 if self.redis_url else free_port(a.host)
            metrics = ["--metrics-port", str(a.metrics_port + 1 + i)] if a.metrics_port else []
            self._spawn([sys.executable, "-m", "remotegrad.server.cli", "worker",
                         "--host", a.host, "--port", str(port), "--advertise-host",
                         a.advertise_host, "--backend", a.backend, "--device", str(a.device),
                         "--memory-limit", str(a.memory_limit),
                         *metrics, *self._common()])
            addrs.append(f"{a.advertise_host}:{port}")
        return addrs

    def start_gateway(self, worker_addrs: list[str]) -> None:
        a = self.args
        static = [] if self.redis_url else ["--worker-addrs", ",".join(worker_addrs)]
        self._spawn([sys.executable, "-m", "remotegrad.server.cli", "gateway",
                     "--host", a.host, "--port", str(a.port),
                     "--metrics-port", str(a.metrics_port), "--cache-ttl", str(a.cache_ttl),
                     "--max-queue", str(a.max_queue), "--max-nodes", str(a.max_nodes),
                     "--max-tensor-bytes", str(a.max_tensor_bytes),
                     "--inline-result-bytes", str(a.inline_result_bytes),
                     "--max-memory-bytes", str(a.max_memory_bytes),
                     "--local-max-nodes", str(a.local_max_nodes),
                     "--local-max-bytes", str(a.local_max_bytes),
                     "--max-request-bytes", str(a.max_request_bytes),
                     "--rate-limit", str(a.rate_limit), "--rate-burst", str(a.rate_burst),
                     *(["--tls-server-name", a.tls_server_name] if a.tls_server_name else []),
                     *(["--tokens-file", a.tokens_file] if a.tokens_file else []),
                     *static, *self._common()],
                    env=dict(os.environ, REMOTEGRAD_TOKENS=a.tokens) if a.tokens else None)

    def _wait(self, ready, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{what}: a cluster process exited with {dead[0].returncode}")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001, S110  (not up yet)
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{what} not ready after {timeout:.0f}s")

    def wait_ready(self) -> str:
        address = f"{self.args.host}:{self.args.port}"
        from .security import Auth
        a = self.args
        tls = grpc_server.TLS.from_args(a)
        channel = (grpc.secure_channel(address, tls.channel_credentials()) if tls.serving
                   else grpc.insecure_channel(address))
        token = Auth.first_token(a)
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        health = health_pb2_grpc.HealthStub(channel)
        status = pb_grpc.GatewayStub(channel)

        def ready() -> bool:
            h = health.Check(health_pb2.HealthCheckRequest(
                service=grpc_server.GATEWAY_SERVICE), timeout=1)
            if h.status != health_pb2.HealthCheckResponse.SERVING:
                return False
            if not self.redis_url:
                return True
            workers = status.ClusterStatus(pb.ClusterStatusRequest(), timeout=1,
                                           metadata=metadata).workers
            return len(workers) >= self.args.workers
        self._wait(ready, "gateway and workers")
        channel.close()
        return address

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def up(args) -> int:
    if args.port == 0:
        args.port = free_port(args.host)
    cluster = Cluster(args)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cluster.start_redis()
        cluster.start_gateway(cluster.start_workers())
        address = cluster.wait_ready()
        print(f"remotegrad cluster ready at {address} "
              f"({args.workers} workers, redis {cluster.redis_url or 'none'}, pid {os.getpid()})",
              flush=True)
        while all(p.poll() is None for p in cluster.procs):
            time.sleep(0.2)
        print("remotegrad cluster: a process exited; stopping", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cluster.stop()
        print("remotegrad cluster stopped", flush=True)
