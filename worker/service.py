"""The Worker gRPC service: Execute runs one graph; the process registers itself in Redis
with a heartbeat and, on SIGTERM, stops taking calls, drains and deregisters."""

from __future__ import annotations

import logging
import os
import threading
import time

import grpc
from remotegrad.proto import codec, grpc_server, keys, metrics, peer
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.observability import request_id
from remotegrad.proto.kept import KeptCopies
from remotegrad.proto.registry import BUSY, Registry
from remotegrad.proto.status import abort, status_of
from remotegrad.proto.store import (GuardedStore, MemoryTensorStore, RedisTensorStore,
                                    TieredStore)
from remotegrad.proto.write_behind import WriteBehind

from . import backend as backends
from . import engine
from .budget import Budget
from .compute import CallCancelled, Cancellation, compute
from .held import Held, WorkerStore

log = logging.getLogger("remotegrad.worker")


class Load:
    """The worker's own bound on its calls, and the load its heartbeat reports.

    At most `capacity` Execute calls compute at once, and at most `queue` more wait for
    a turn; a call beyond that is refused at once with RESOURCE_EXHAUSTED (registry.BUSY),
    which a gateway takes as "try another worker": several gateways sharing this worker
    cannot overload it, whatever each one counts. The heartbeat carries `admitted`
    (computing and waiting), so that gateways also see each other's calls here."""

    WAIT_STEP = 0.05  # seconds between checks that a waiting call is still wanted

    def __init__(self, capacity: int, queue: int = 0) -> None:
        self.capacity, self.queue = max(1, capacity), max(0, queue)
        self.admitted = self.running = 0
        self._turns = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()

    @property
    def bound(self) -> int:
        return self.capacity + self.queue

    def admit(self) -> bool:
        with self._lock:
            if self.admitted >= self.bound:
                return False
            self.admitted += 1
            return True

    def run(self, fn, cancel: Cancellation):
        """fn() once one of the `capacity` turns is free (CallCancelled if the call ends
        while it waits)."""
        while not self._turns.acquire(timeout=self.WAIT_STEP):
            cancel.check()
        with self._lock:
            self.running += 1
        try:
            return fn()
        finally:
            with self._lock:
                self.running -= 1
            self._turns.release()

    def leave(self) -> None:
        with self._lock:
            self.admitted -= 1

    def record(self) -> dict:
        return {"inflight": self.admitted, "running": self.running,
                "capacity": self.capacity, "bound": self.bound}


class WorkerServicer(pb_grpc.WorkerServicer):
    def __init__(self, store, backend, address: str, load: Load | None = None,
                 budget: Budget | None = None) -> None:
        self.store, self.backend, self.address = store, backend, address
        self.budget = budget  # memory admitted across concurrent calls, cost per call
        self.load = load or Load(1 << 30)

    def Execute(self, request, context):  # noqa: N802 (gRPC method name)
        meta = dict(context.invocation_metadata())
        token = request_id.set(meta.get("x-request-id", "-"))
        start, code = time.perf_counter(), "OK"
        cancel = Cancellation()
        left = context.time_remaining()  # the budget's wait ends before the deadline
        cancel.deadline = time.monotonic() + left if left is not None else None
        # Runs when the RPC ends: at once when the gateway cancels or the deadline passes.
        if not context.add_callback(cancel.cancel):
            cancel.cancel()  # the RPC already ended: do not start
        if not self.load.admit():
            metrics.CALLS.labels("worker", "Execute", "RESOURCE_EXHAUSTED").inc()
            request_id.reset(token)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{BUSY}: {self.load.capacity} computing and "
                          f"{self.load.queue} waiting")
        metrics.RUNNING.labels("worker").inc()
        try:
            tenant = keys.check_tenant(meta.get("x-tenant", "default"))
            resp = self.load.run(lambda: self._run(request, tenant, cancel), cancel)
            resp.worker = self.address
            return resp
        except CallCancelled:
            code = "CANCELLED"
            metrics.CANCELLED.labels("worker").inc()
            log.info("Execute stopped: the call was cancelled or its deadline passed")
            context.abort(grpc.StatusCode.CANCELLED, "cancelled")
        except Exception as e:  # noqa: BLE001  (every failure becomes a status)
            code = status_of(e)[0].name
            log.info("Execute failed (%s): %s", code, e)
            abort(context, e)
        finally:
            self.load.leave()
            metrics.RUNNING.labels("worker").dec()
            metrics.CALLS.labels("worker", "Execute", code).inc()
            metrics.LATENCY.labels("worker", "Execute").observe(time.perf_counter() - start)
            request_id.reset(token)

    def _run(self, request, tenant: str, cancel: Cancellation):
        """One admitted call in its turn (hashing its inline bytes is work too)."""
        _verify_inline(request)
        return compute(request, self.store, tenant, self.backend, cancel, self.budget)


def _verify_inline(request) -> None:
    """Every inline tensor's bytes hash to its name before anything stores or uses them:
    nobody can plant other bytes under a tensor's name (the gateway checked them too;
    this worker does not depend on it)."""
    for msg in request.tensors:
        codec.decode_array(msg, verify_hash=True)  # OpError (INVALID_ARGUMENT) otherwise


def _door(args) -> list[grpc.ServerInterceptor]:
    """The worker secret's interceptor, or none (and a warning) without a secret."""
    try:
        secret = peer.check_secret(getattr(args, "worker_secret", ""))
    except ValueError as e:
        raise SystemExit(f"remotegrad worker: cannot start: {e}") from None
    if not secret:
        log.warning("no worker secret (REMOTEGRAD_WORKER_SECRET): any process that can reach "
                    "%s:%s may call this worker as any tenant", args.host, args.port)
        return []
    return [peer.RequireSecret(secret, lambda method: metrics.CALLS.labels(
        "worker", method.rsplit("/", 1)[-1], "UNAUTHENTICATED").inc())]


class Heartbeat(threading.Thread):
    """Keeps this worker in the registry (proto/registry.py; its entry expires 3 heartbeats
    after the last) until stopped; each beat carries its current load."""

    def __init__(self, redis_client, address: str, info: dict, every: float,
                 load: Load | None = None) -> None:
        super().__init__(daemon=True, name="heartbeat")
        self.registry, self.address, self.every = Registry(redis_client), address, every
        self.info, self.load = info, load or Load(1)
        self.stopped = threading.Event()

    def beat(self) -> None:
        self.registry.announce(self.address, {**self.info, **self.load.record()},
                               ttl_s=3 * self.every)

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.beat()
            except Exception as e:  # noqa: BLE001  (Redis down: keep serving, retry)
                log.warning("heartbeat failed: %s", e)

    def stop(self) -> None:
        self.stopped.set()
        try:
            self.registry.leave(self.address)
        except Exception as e:  # noqa: BLE001
            log.warning("could not deregister: %s", e)


def worker_store(redis_url: str, ttl: int, cache_bytes: int):
    """(the worker's store, the raw shared store or None). Leaves (content-named: uploads,
    inline leaves) are read through an LRU over the shared tensor store, TTL'd; kept
    results (provenance-named) are held in memory and written behind to their durable
    copies, without a TTL, by this worker (worker/held.py), never to the tensor store."""
    if not redis_url:
        return WorkerStore(MemoryTensorStore(cache_bytes), Held(cache_bytes)), None
    raw = RedisTensorStore(redis_url, ttl=ttl)
    guarded = GuardedStore(raw, lambda op: metrics.REDIS_ERRORS.labels(f"store_{op}").inc())
    return WorkerStore(TieredStore(guarded, cache_bytes), Held(cache_bytes),
                       KeptCopies(raw.redis), WriteBehind()), raw


def _advertised_host(host: str) -> str:
    """`auto`: this machine's address as others see it (a container's own IP)."""
    if host == "auto":
        import socket
        return socket.gethostbyname(socket.gethostname())
    return host


def serve(args) -> None:
    """Run a worker until SIGTERM/SIGINT."""
    try:
        be = backends.select(args.backend, args.device, memory_limit=args.memory_limit)
    except (backends.BackendUnavailable, ValueError) as e:
        raise SystemExit(f"remotegrad worker: cannot start: {e}") from None
    store, raw_store = worker_store(args.redis_url, args.tensor_ttl, args.memory_cache_bytes)
    load = Load(args.max_inflight, args.max_queue)
    # A thread for every call admitted and a few more, so that health checks and the
    # refusal of a call over the bound never wait behind computations.
    server = grpc_server.make_server(load.bound + 4, max_concurrent=load.bound + 16,
                                     interceptors=_door(args))
    tls = grpc_server.TLS.from_args(args)
    port = grpc_server.bind(server, args.host, args.port, tls.server_credentials())
    address = f"{_advertised_host(args.advertise_host)}:{port}"
    # Its tensor LRU and plan cache are inside the memory budget (worker/budget.py).
    local = store.leaves.local if args.redis_url else store.leaves
    budget = Budget(be.memory_limit, args.max_flops, args.budget_wait, be.where,
                    caches=(local, store.held, engine.plans))
    pb_grpc.add_WorkerServicer_to_server(WorkerServicer(store, be, address, load, budget), server)
    health = grpc_server.add_standard_services(server, grpc_server.WORKER_SERVICE,
                                               with_reflection=False)
    metrics.serve(args.metrics_port, args.host)
    server.start()
    beat = None
    if args.redis_url:
        beat = Heartbeat(raw_store.redis, address, {**be.info(), "pid": os.getpid()},
                         args.heartbeat, load)
        beat.beat()
        beat.start()
    log.info("worker %s serving (backend %s)", address, be.describe())
    print(f"remotegrad worker listening on {address}", flush=True)
    grpc_server.wait_for_stop_signal()
    stop_started = time.monotonic()
    log.info("worker %s draining (within %.0fs)", address, args.stop_grace)
    health.enter_graceful_shutdown()
    if beat:
        beat.stop()
        # Gateways drop a worker 2 heartbeats after it leaves the registry (plus one
        # refresh); keep serving until then, within half the grace.
        time.sleep(min(3 * args.heartbeat + 1.0, args.stop_grace / 2))
    # The rest of the grace for the calls still running; then they are cancelled.
    server.stop(grace=max(0.0, args.stop_grace - (time.monotonic() - stop_started))).wait()
