"""The gateway's view of the workers: who is alive, how loaded, and a channel to each.

Workers announce themselves in Redis (a key per worker with a TTL, refreshed by a
heartbeat), so starting or stopping one changes the pool without restarting anything.
Without Redis the pool is a static list of addresses.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

import grpc

from remotegrad.proto import keys, metrics, peer
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.errors import NoWorkerFitsError, NoWorkersError, PoolBusyError
from remotegrad.worker.estimate import describe_bytes

log = logging.getLogger("remotegrad.pool")

CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", -1)]


@dataclass(eq=False)
class Worker:
    address: str
    channel: grpc.Channel
    stub: pb_grpc.WorkerStub
    inflight: int = 0
    dead_until: float = 0.0
    last_seen: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def memory_limit(self) -> int:
        """The memory budget the worker advertises (0: none, or not advertised)."""
        try:
            return max(0, int(self.info.get("memory_limit") or 0))
        except (TypeError, ValueError):
            return 0

    def fits(self, need: int) -> bool:
        limit = self.memory_limit
        return limit == 0 or need <= limit


class WorkerPool:
    DEAD_FOR = 5.0  # seconds a worker that failed is left out, unless it re-registers

    def __init__(self, redis_client=None, static: list[str] | None = None,
                 capacity: int = 68, refresh: float = 1.0, grace: float = 2.0,
                 credentials: grpc.ChannelCredentials | None = None,
                 server_name: str = "", secret: str = "") -> None:
        """`credentials`: reach workers over TLS (`server_name`: the name their
        certificates carry, when it is not the host they registered under); `secret`: the
        worker secret sent on every call (proto/peer.py)."""
        self._redis, self._static = redis_client, static or []
        self._credentials, self._server_name = credentials, server_name
        self._secret = secret
        self._unreadable: set[bytes] = set()  # registry keys already reported
        self._capacity, self._refresh_every, self._grace = capacity, refresh, grace
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()
        self._refreshed = 0.0
        self._turn = 0

    def _discover(self) -> dict[str, dict]:
        if self._redis is None:
            return {a: {} for a in self._static}
        import redis
        try:
            found = {}
            for key in self._redis.scan_iter(match=keys.WORKER_PATTERN, count=1000):
                info = self._record(key)
                if info is not None:
                    found[info["address"]] = info
            return found
        except redis.RedisError as e:
            log.warning("worker registry unreadable, keeping the last view: %s", e)
            metrics.REDIS_ERRORS.labels("registry").inc()
            return {a: w.info for a, w in self._workers.items()}

    def _record(self, key: bytes) -> dict | None:
        """A worker's registry record, or None when there is none or it does not parse
        (skipped, logged once per key): one bad record never hides the other workers."""
        import redis
        try:
            raw = self._redis.get(key)
        except redis.ResponseError as e:  # a key of another type under the pattern
            return self._unreadable_record(key, f"unreadable ({e})")
        if not raw:
            return None
        try:
            info = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            return self._unreadable_record(key, f"not JSON ({e})")
        expected = key.decode("utf-8", "replace").removeprefix(keys.worker_key(""))
        if not isinstance(info, dict) or info.get("address") != expected:
            return self._unreadable_record(key, "not a record of the worker the key names")
        return info

    def _unreadable_record(self, key: bytes, why: str) -> None:
        if key not in self._unreadable and len(self._unreadable) < 10_000:
            self._unreadable.add(key)
            log.warning("worker registry: skipping %s: %s",
                        key.decode("utf-8", "replace")[:200], why)
            metrics.REDIS_ERRORS.labels("registry_record").inc()
        return None

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._refreshed < self._refresh_every:
            return
        found = self._discover()
        with self._lock:
            self._refreshed = now
            for addr, info in found.items():
                w = self._workers.get(addr)
                if w is None:
                    ch = self._channel(addr)
                    w = self._workers[addr] = Worker(addr, ch, pb_grpc.WorkerStub(ch))
                    log.info("worker joined: %s", addr)
                w.info, w.last_seen = info, now
            # A worker missing from the registry goes after a grace period, not at once:
            # a Redis that restarted empty is refilled by the next heartbeats.
            for addr, w in list(self._workers.items()):
                if now - w.last_seen > self._grace and w.inflight == 0:
                    self._workers.pop(addr).channel.close()
                    log.info("worker left: %s", addr)
            metrics.WORKERS.set(len(self.live()))

    def _channel(self, addr: str) -> grpc.Channel:
        if self._credentials is None:
            return peer.secured_channel(grpc.insecure_channel(addr, options=CHANNEL_OPTIONS),
                                        self._secret)
        options = list(CHANNEL_OPTIONS)
        if self._server_name:
            options.append(("grpc.ssl_target_name_override", self._server_name))
        return peer.secured_channel(grpc.secure_channel(addr, self._credentials,
                                                        options=options), self._secret)

    def live(self) -> list[Worker]:
        now = time.monotonic()
        return [w for w in self._workers.values() if w.dead_until <= now]

    def check_fits(self, need: int) -> None:
        """Refuse up front a computation needing `need` bytes at its peak that no live
        worker's memory limit admits (no live workers at all is left to acquire())."""
        self.refresh()
        with self._lock:
            live = self.live()
            if live and not any(w.fits(need) for w in live):
                raise self._too_big(need, live)

    @staticmethod
    def _too_big(need: int, workers: list[Worker]) -> NoWorkerFitsError:
        largest = max(w.memory_limit for w in workers)
        return NoWorkerFitsError(
            f"the computation needs about {describe_bytes(need)} at its peak (estimated "
            f"from shapes, gradients included), more than any live worker can hold: the "
            f"largest worker memory limit is {describe_bytes(largest)} "
            f"({len(workers)} live worker{'s' if len(workers) != 1 else ''})")

    def acquire(self, exclude: tuple[Worker, ...] = (), need: int = 0) -> Worker:
        """The least-loaded live worker whose memory limit admits `need` bytes, its
        in-flight count taken."""
        self.refresh()
        with self._lock:
            candidates = [w for w in self.live() if w not in exclude]
            if not candidates:
                raise NoWorkersError("no live workers are registered")
            fitting = [w for w in candidates if w.fits(need)]
            if not fitting:
                raise self._too_big(need, candidates)
            candidates = fitting
            least = min(w.inflight for w in candidates)
            # Ties (an idle pool) go round the workers, not always to the first one.
            tied = [w for w in candidates if w.inflight == least]
            self._turn = (self._turn + 1) % len(tied)
            w = tied[self._turn]
            if w.inflight >= self._capacity:
                raise PoolBusyError(f"all {len(candidates)} workers are at capacity "
                                    f"({self._capacity} calls each)")
            w.inflight += 1
            metrics.INFLIGHT.labels(w.address).set(w.inflight)
            return w

    def release(self, w: Worker) -> None:
        with self._lock:
            w.inflight -= 1
            metrics.INFLIGHT.labels(w.address).set(w.inflight)

    def mark_dead(self, w: Worker) -> None:
        log.warning("worker %s stopped answering; leaving it out", w.address)
        with self._lock:
            w.dead_until = time.monotonic() + self.DEAD_FOR
        metrics.WORKERS.set(len(self.live()))

    def snapshot(self) -> list[Worker]:
        self.refresh()
        with self._lock:
            return list(self.live())

    def close(self) -> None:
        with self._lock:
            for w in self._workers.values():
                w.channel.close()
            self._workers.clear()
