"""The gateway's view of the workers: who is alive, how loaded, and a channel to each.

Workers announce themselves in Redis (proto/registry.py: one hash of records and one
sorted set of expiry times, refreshed by each worker's heartbeat), so starting or stopping
one changes the pool without restarting anything. A background thread reads the registry
every `refresh` seconds (O(workers), never a scan of the keyspace); routing (`acquire()`)
only reads the view it left in memory. Each record carries the worker's load (calls
running, capacity), so gateways sharing workers see each other's calls: a worker's load
here is this gateway's calls on it plus the others' it reported. Without Redis the pool is
a static list of addresses.

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
from grpc_health.v1 import health_pb2, health_pb2_grpc

from remotegrad.proto import metrics, peer
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.errors import NoWorkerFitsError, NoWorkersError, PoolBusyError
from remotegrad.proto.registry import BUSY, Registry
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
    others: int = 0  # calls of other gateways running on it, from its last heartbeat
    full_until: float = 0.0  # it refused a call at its own bound: last choice until then
    watch: object = None  # the health stream that keeps the channel's call thread (below)

    @property
    def load(self) -> int:
        """Calls on this worker: this gateway's in flight plus the other gateways'
        (and, for a while after it said it was full, more than any other's)."""
        full = 1 << 20 if self.full_until and time.monotonic() < self.full_until else 0
        return self.inflight + self.others + full

    def reported(self, info: dict) -> None:
        """Take a fresh registry record: its running calls, less this gateway's own."""
        try:
            running = max(0, int(info.get("inflight") or 0))
        except (TypeError, ValueError):
            running = 0
        self.info, self.others = info, max(0, running - self.inflight)

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
    FIRST_VIEW_WAIT = 5.0  # seconds a call made as the gateway starts waits for workers
    FULL_FOR = 1.0  # seconds a worker that refused a call at its bound is the last choice

    def __init__(self, redis_client=None, static: list[str] | None = None,
                 capacity: int = 68, refresh: float = 1.0, grace: float = 2.0,
                 credentials: grpc.ChannelCredentials | None = None,
                 server_name: str = "", secret: str = "") -> None:
        """`credentials`: reach workers over TLS (`server_name`: the name their
        certificates carry, when it is not the host they registered under); `secret`: the
        worker secret sent on every call (proto/peer.py)."""
        self._redis, self._static = redis_client, static or []
        self._registry = Registry(redis_client) if redis_client is not None else None
        self._credentials, self._server_name = credentials, server_name
        self._secret = secret
        self._unreadable: set[bytes] = set()  # registry records already reported
        self._capacity, self._refresh_every, self._grace = capacity, refresh, grace
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()
        self._refreshed = 0.0
        self._first_view = threading.Event()
        self._closed = threading.Event()
        self._turn = 0
        self.latencies, self.hedges = Latencies(), Budget()
        if self._registry is None:
            self.refresh(force=True)
            self._first_view.set()
        else:
            threading.Thread(target=self._watch, daemon=True, name="registry").start()

    def _watch(self) -> None:
        """The registry's reader: a view at once, then one every `refresh` seconds."""
        while not self._closed.is_set():
            try:
                self.refresh(force=True)
            except Exception:  # noqa: BLE001  (never let the thread die: log and go on)
                log.exception("worker registry refresh failed")
            self._first_view.set()
            self._closed.wait(self._refresh_every)

    def _discover(self) -> dict[str, dict]:
        if self._registry is None:
            return {a: {} for a in self._static}
        import redis
        try:
            found = {}
            for addr, raw in self._registry.live():
                info = self._record(addr, raw)
                if info is not None:
                    found[info["address"]] = info
            return found
        except redis.RedisError as e:
            log.warning("worker registry unreadable, keeping the last view: %s", e)
            metrics.REDIS_ERRORS.labels("registry").inc()
            return {a: w.info for a, w in self._workers.items()}

    def _record(self, addr: bytes, raw: bytes | None) -> dict | None:
        """A worker's registry record, or None when it does not parse (skipped, logged
        once per address): one bad record never hides the other workers."""
        if not raw:
            return self._unreadable_record(addr, "no record")
        try:
            info = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            return self._unreadable_record(addr, f"not JSON ({e})")
        if not isinstance(info, dict) or info.get("address") != addr.decode("utf-8",
                                                                            "replace"):
            return self._unreadable_record(addr, "not a record of the worker it is filed under")
        return info

    def _unreadable_record(self, addr: bytes, why: str) -> None:
        if addr not in self._unreadable and len(self._unreadable) < 10_000:
            self._unreadable.add(addr)
            log.warning("worker registry: skipping worker %s: %s",
                        addr.decode("utf-8", "replace")[:200], why)
            metrics.REDIS_ERRORS.labels("registry_record").inc()
        return None

    def refresh(self, force: bool = False) -> None:
        """Read the registry now (`force`), or if the last read is `refresh` seconds old.
        The registry thread calls it; routing never does."""
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
                w.reported(info)
                w.last_seen = now
                _keep_spinning(w)
            # A worker missing from the registry goes after a grace period, not at once:
            # a Redis that restarted empty is refilled by the next heartbeats.
            for addr, w in list(self._workers.items()):
                if now - w.last_seen > self._grace and w.inflight == 0:
                    self._workers.pop(addr).channel.close()
                    log.info("worker left: %s", addr)
            metrics.WORKERS.set(len(self.live()))

    def _view(self) -> None:
        """Wait (briefly, once) for the registry thread's first view of the workers."""
        if not self._first_view.is_set():
            self._first_view.wait(self.FIRST_VIEW_WAIT)

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
        self._view()
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
        is no busier than one call more than the least loaded. Load counts the other
        gateways' calls the worker reported in its last heartbeat."""
        self._view()
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
            least = min(w.load for w in candidates)
            held = [w for w in candidates if w.address == prefer and w.load <= least + 1]
            if held:
                w = held[0]
            else:
                # Ties (an idle pool) go round the workers, not always to the first one.
                tied = [w for w in candidates if w.load == least]
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

    def busy(self, w: Worker, err: grpc.RpcError) -> bool:
        """Whether `err` is `w` refusing a call at its own bound on calls (registry.BUSY);
        if so, it is the last choice for FULL_FOR seconds."""
        if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or \
                not (err.details() or "").startswith(BUSY):
            return False
        with self._lock:
            w.full_until = time.monotonic() + self.FULL_FOR
        log.info("worker %s is at its bound on calls; trying another", w.address)
        return True

    def has_other(self, tried) -> bool:
        """Whether a live worker not in `tried` could take a call."""
        with self._lock:
            return any(w not in tried for w in self.live())

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
        self._view()
        with self._lock:
            return list(self.live())

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for w in self._workers.values():
                w.channel.close()
            self._workers.clear()


def _keep_spinning(w: Worker) -> None:
    """Keep one call open on the worker's channel: a health Watch stream (the worker's
    health service answers it without holding a thread). gRPC's sync channel polls its
    calls' events from a thread it starts when the channel has none in flight and ends
    when the last one finishes: without a call that lasts, every Execute started a thread
    (a 200 KB request answered with 1 MB: 1.4 ms a call, 0.9 ms with one call kept open).
    A thread reads the stream and ends it when the worker stops serving (its graceful
    stop waits for open calls); one that ended is opened again at the next refresh.
    The call is started here, under the pool's lock (refresh holds it), never in the
    thread: a stub made on a channel that close() closed meanwhile crashed the process
    (SIGSEGV in grpc's registered-call handle, tests/unit/test_worker_memory.py)."""
    if w.watch is not None and w.watch.is_alive():
        return
    try:
        stream = health_pb2_grpc.HealthStub(w.channel).Watch(health_pb2.HealthCheckRequest())
    except ValueError:  # the channel was closed
        return
    w.watch = threading.Thread(target=_watch_health, args=(stream,), daemon=True,
                               name=f"watch {w.address}")
    w.watch.start()


def _watch_health(stream) -> None:
    try:
        for answer in stream:
            if answer.status != health_pb2.HealthCheckResponse.SERVING:
                stream.cancel()  # stopping: its graceful stop must not wait for this call
                return
    except (grpc.RpcError, ValueError):  # the worker went away, or its channel was closed
        return
