"""The gateway's view of the workers: who is alive, how loaded, and a channel to each.

Workers announce themselves in Redis (a key per worker with a TTL, refreshed by a
heartbeat), so starting or stopping one changes the pool without restarting anything.
Without Redis the pool is a static list of addresses.

The pool also watches the answers itself: a worker that misses STUCK_AFTER calls in a row
(its deadline passed, or a hedge to another worker answered first) is left out of routing
until a gRPC health probe answers again, however long its heartbeat lasts (a SIGSTOPped
process keeps its registry key until the key's TTL).
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

from .hedging import STUCK, Budget, Latencies

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
    misses: int = 0  # consecutive calls it did not answer in time
    stuck_until: float = 0.0  # > 0: out of routing; back once probed healthy after this
    out_for: float = 0.0  # how long it was left out last time (doubles while it misses)

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
    STUCK_AFTER = 3  # consecutive calls not answered in time that take a worker out
    OUT_MIN, OUT_MAX = 1.0, 30.0  # seconds a stuck worker stays out at least
    PROBE_EVERY, PROBE_TIMEOUT = 0.25, 0.5  # its health probe

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
        self.latencies, self.hedges = Latencies(), Budget()

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
        return [w for w in self._workers.values()
                if w.dead_until <= now and not w.stuck_until]

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

    def acquire(self, exclude: tuple[Worker, ...] = (), need: int = 0,
                prefer: str | None = None) -> Worker:
        """The least-loaded live worker whose memory limit admits `need` bytes, its
        in-flight count taken; the worker at `prefer` (it holds the call's state) when it
        is no busier than one call more than the least loaded."""
        self.refresh()
        with self._lock:
            candidates = [w for w in self.live() if w not in exclude]
            if not candidates:
                stuck = sum(1 for w in self._workers.values() if w.stuck_until)
                raise NoWorkersError("no live workers are registered" + (
                    f" ({stuck} registered but not answering)" if stuck else ""))
            fitting = [w for w in candidates if w.fits(need)]
            if not fitting:
                raise self._too_big(need, candidates)
            candidates = fitting
            least = min(w.inflight for w in candidates)
            held = [w for w in candidates if w.address == prefer and w.inflight <= least + 1]
            if held:
                w = held[0]
            else:
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

    def answered(self, w: Worker, seconds: float, need: int) -> None:
        """A call `w` answered (successfully) in `seconds`."""
        with self._lock:
            w.misses, w.out_for = 0, 0.0
        self.latencies.record(need, seconds)

    def missed(self, w: Worker) -> None:
        """A call `w` did not answer in time; the STUCK_AFTER-th in a row takes it out of
        routing until its health probe answers (and at least `out_for`)."""
        with self._lock:
            w.misses += 1
            if w.misses < self.STUCK_AFTER or w.stuck_until:
                return
            if not [o for o in self.live() if o is not w]:
                return  # the last live worker: leaving it out would only fail calls sooner
            w.out_for = min(self.OUT_MAX, max(self.OUT_MIN, 2 * w.out_for))
            w.stuck_until = time.monotonic() + w.out_for
        log.warning("worker %s missed %d calls in a row; out of routing until it answers a "
                    "health probe (at least %.0fs)", w.address, w.misses, w.out_for)
        STUCK.inc()
        metrics.WORKERS.set(len(self.live()))
        threading.Thread(target=self._probe, args=(w,), daemon=True,
                         name=f"probe {w.address}").start()

    def _probe(self, w: Worker) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        stub = health_pb2_grpc.HealthStub(w.channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        while self._workers.get(w.address) is w:  # it may leave the pool meanwhile
            time.sleep(self.PROBE_EVERY)
            if time.monotonic() < w.stuck_until:
                continue
            try:
                ok = stub.Check(health_pb2.HealthCheckRequest(),
                                timeout=self.PROBE_TIMEOUT).status == serving
            except grpc.RpcError:
                ok = False
            except ValueError:  # its channel was closed: it left the pool
                return
            if ok:
                with self._lock:
                    w.stuck_until, w.misses = 0.0, self.STUCK_AFTER - 1  # one more: out
                log.info("worker %s answers again; back in routing", w.address)
                metrics.WORKERS.set(len(self.live()))
                return

    def snapshot(self) -> list[Worker]:
        self.refresh()
        with self._lock:
            return list(self.live())

    def close(self) -> None:
        with self._lock:
            for w in self._workers.values():
                w.channel.close()
            self._workers.clear()
