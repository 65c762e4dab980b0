"""`remotegrad cluster up`: Redis, a gateway and N workers in the foreground, supervised.

The processes are the same commands the compose file runs. The address is printed once
every worker has registered and the gateway reports SERVING. From then on a child that
exits is started again with the same command line (server/supervisor.py): a worker
rejoins through the registry, Redis comes back on its port, the gateway on its port.
Only SIGINT/SIGTERM to this command stops everything it started, by pid.

Secrets never go into a child's argv (any local user reads argv in `ps`): the worker
secret (REMOTEGRAD_WORKER_SECRET, generated per cluster unless set), the Redis URL with
its password and the tokens travel in the children's environment, the same on restarts.
Workers bind and register on --advertise-host (loopback by default), not --host: only
the gateway talks to them.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from remotegrad.proto import grpc_server
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

from remotegrad.proto import peer

from . import local_redis
from .supervisor import Child, Supervisor, describe_exit

log = logging.getLogger("remotegrad.cluster")
SECRET_ENV = ("REMOTEGRAD_WORKER_SECRET", "REMOTEGRAD_REDIS_URL", "REMOTEGRAD_TOKENS")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "remotegrad.server.cli", *args]


class Stopping(Exception):
    """SIGINT or SIGTERM reached `cluster up`."""


class Cluster:
    def __init__(self, args) -> None:
        self.args = args
        self.redis_url = args.redis_url
        self.redis: local_redis.LocalRedis | None = None
        self.secret = _worker_secret()
        self.stopping: list[int] = []
        self.supervisor = Supervisor(args.port, maximum=args.restart_backoff_max)

    def _spawn(self, name: str, argv: list[str], quiet: bool = False, env=None,
               last: bool = False) -> None:
        self.supervisor.add(Child(name, argv, env=env, quiet=quiet, last=last))

    def _common(self) -> list[str]:
        a = self.args
        out = ["--tensor-ttl", str(a.tensor_ttl), "--heartbeat", str(a.heartbeat),
               "--max-inflight", str(a.max_inflight), "--max-queue", str(a.max_queue),
               "--log-level", a.log_level,
               "--memory-cache-bytes", str(a.memory_cache_bytes),
               "--stop-grace", str(a.stop_grace)]
        for flag in ("tls_cert", "tls_key", "tls_ca"):
            if getattr(a, flag):
                out += ["--" + flag.replace("_", "-"), getattr(a, flag)]
        if a.tls_client_auth:
            out += ["--tls-client-auth", "true"]
        return out

    def _env(self, **extra: str) -> dict:
        """A child's environment: this one's, with the cluster's secrets (and `extra`)
        set by us alone."""
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        env["REMOTEGRAD_WORKER_SECRET"] = self.secret
        if self.redis_url:
            env["REMOTEGRAD_REDIS_URL"] = self.redis_url
        return {**env, **extra}

    def start_redis(self) -> None:
        exe = shutil.which("redis-server")
        if self.redis_url or exe is None:
            return
        self.redis = local_redis.prepare(exe, self.args.redis_maxmemory)
        self._spawn("redis", self.redis.argv, quiet=True, last=True)
        self.redis_url = self.redis.url
        import redis
        client = redis.Redis.from_url(self.redis_url)
        self._wait(lambda: client.ping(), "redis-server")

    def start_workers(self) -> list[str]:
        a = self.args
        addrs = []
        # Workers listen where the gateway reaches them (not on --host, which is the
        # clients' side): `auto` is this machine's address, so they bind --host then.
        host = a.host if a.advertise_host == "auto" else a.advertise_host
        for i in range(a.workers):
            port = 0 if self.redis_url else free_port(host)
            metrics = ["--metrics-port", str(a.metrics_port + 1 + i)] if a.metrics_port else []
            self._spawn(f"worker-{i}", _command(
                "worker", "--host", host, "--port", str(port), "--advertise-host",
                a.advertise_host, "--backend", a.backend, "--device", str(a.device),
                "--memory-limit", str(a.memory_limit), "--max-flops", str(a.max_flops),
                "--budget-wait", str(a.budget_wait), *metrics, *self._common()),
                env=self._env())
            addrs.append(f"{a.advertise_host}:{port}")
        return addrs

    def start_gateway(self, worker_addrs: list[str]) -> None:
        a = self.args
        static = [] if self.redis_url else ["--worker-addrs", ",".join(worker_addrs)]
        self._spawn("gateway", _command(
            "gateway", "--host", a.host, "--port", str(a.port),
            "--metrics-port", str(a.metrics_port), "--cache-ttl", str(a.cache_ttl),
            "--max-nodes", str(a.max_nodes),
            "--max-tensor-bytes", str(a.max_tensor_bytes),
            "--inline-result-bytes", str(a.inline_result_bytes),
            "--max-memory-bytes", str(a.max_memory_bytes),
            "--max-flops", str(a.max_flops), "--max-deadline", str(a.max_deadline),
            "--max-calls-per-tenant", str(a.max_calls_per_tenant),
            "--local-max-nodes", str(a.local_max_nodes),
            "--local-max-bytes", str(a.local_max_bytes),
            "--max-request-bytes", str(a.max_request_bytes),
            "--max-connection-age", str(a.max_connection_age),
            "--rate-limit", str(a.rate_limit), "--rate-burst", str(a.rate_burst),
            "--kept-quota-bytes", str(a.kept_quota_bytes), "--kept-idle", str(a.kept_idle),
            *(["--tls-server-name", a.tls_server_name] if a.tls_server_name else []),
            *(["--tokens-file", a.tokens_file] if a.tokens_file else []),
            *(["--allow-anonymous", "true"] if a.allow_anonymous else []),
            "--max-streams-per-tenant", str(a.max_streams_per_tenant),
            "--stream-idle-timeout", str(a.stream_idle_timeout),
            "--fetch-bytes-in-flight", str(a.fetch_bytes_in_flight),
            *static, *self._common()),
            env=self._env(**({"REMOTEGRAD_TOKENS": a.tokens} if a.tokens else {})))

    def _wait(self, ready, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise Stopping
            # A child that exits before the cluster is ready is a configuration error
            # (a backend that is not there, a port taken): report it, do not restart it.
            dead = [c for c in self.supervisor.children if not c.running]
            if dead:
                raise RuntimeError(f"{what}: {dead[0].name} exited with "
                                   f"{describe_exit(dead[0].proc.returncode)} before the "
                                   "cluster was ready")
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

    def supervise(self) -> None:
        """Restart children that exit until SIGINT/SIGTERM."""
        while not self.stopping:
            self.supervisor.tick()
            time.sleep(0.1)

    def stop(self) -> None:
        # The children drain within --stop-grace; a few seconds more for them to exit.
        self.supervisor.stop(self.args.stop_grace + 5.0)
        if self.redis is not None:
            self.redis.remove()


def _worker_secret() -> str:
    """REMOTEGRAD_WORKER_SECRET when set (checked), else a fresh one for this cluster."""
    try:
        return peer.check_secret(os.environ.get("REMOTEGRAD_WORKER_SECRET", "")) \
            or secrets.token_urlsafe(32)
    except ValueError as e:
        raise SystemExit(f"remotegrad cluster up: cannot start: {e}") from None


def _shown(cluster: Cluster) -> str:
    """Where Redis is, for the ready line: never its password."""
    if cluster.redis is not None:
        return (f"unix://{cluster.redis.socket} (URL with its password in "
                f"{cluster.redis.url_file})")
    return local_redis.redacted(cluster.redis_url) if cluster.redis_url else "none"


def up(args) -> int:
    if args.port == 0:
        args.port = free_port(args.host)
    if "--tokens" in sys.argv or any(a.startswith("--tokens=") for a in sys.argv):
        log.warning("--tokens shows in this command's argv (ps): prefer REMOTEGRAD_TOKENS or "
                    "--tokens-file; the gateway gets them through its environment")
    from .security import Auth, exposure_error
    refused = exposure_error(args.host, Auth.from_args(args), args.allow_anonymous)
    if refused:  # before anything starts: the gateway would refuse it too
        raise SystemExit(f"remotegrad cluster up: cannot start: {refused}")
    cluster = Cluster(args)

    def on_signal(signum, frame):
        cluster.stopping.append(signum)  # no lock, no raise: see wait_for_stop_signal
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        cluster.start_redis()
        cluster.start_gateway(cluster.start_workers())
        address = cluster.wait_ready()
        print(f"remotegrad cluster ready at {address} "
              f"({args.workers} workers, redis {_shown(cluster)}, pid {os.getpid()})",
              flush=True)
        cluster.supervise()
        return 0
    except Stopping:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cluster.stop()
        print("remotegrad cluster stopped", flush=True)
