"""The gateway: validate → stage leaves → fingerprint → result cache → least-loaded
worker → cache, answering large and kept results by reference.

`Gateway` holds the logic as plain methods; `GatewayServicer` only decodes, calls it and
maps errors to status codes (proto/status.py).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from dataclasses import dataclass

import grpc

from remotegrad.proto import codec, keys, metrics, provenance
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.catalog import OpError
from remotegrad.proto.codec import TooLargeError
from remotegrad.proto.errors import (MissingTensorError, NoWorkerFitsError, NoWorkersError,
                                     PoolBusyError, StoreUnavailableError,
                                     WorkerRefusedError)
from remotegrad.proto.observability import request_id, request_id_of
from remotegrad.proto.status import MISSING_KEY, abort
from remotegrad.proto.store import GuardedStore
from remotegrad.worker import engine
from remotegrad.worker.compute import compute
from remotegrad.worker.estimate import check_flops, flops_of_plan, of_plan

from . import fetch
from remotegrad.proto.provenance import fingerprint
from .hedging import HEDGES, Calls
from .durable import Durability
from .holders import Holders
from .pool import WorkerPool
from .scope import CacheCounts, cluster_status
from .security import Auth
from .concurrency import TenantCalls
from .streams import StreamGate
from .write_behind import WriteBehind

log = logging.getLogger("remotegrad.gateway")

# What the gateway receives from workers: with kept results held where they are computed,
# a training step's answer carries its loss, not its parameters (tests count it).
WORKER_ANSWER_BYTES = metrics.Counter("remotegrad_worker_answer_bytes_total",
                                      "bytes of the Execute answers workers sent this gateway")


@dataclass(frozen=True)
class Limits:
    max_nodes: int = 1_000_000
    max_tensor_bytes: int = 4 << 30
    inline_result_bytes: int = 64 << 20  # larger results are answered by reference
    max_memory_bytes: int = 8 << 30  # peak working set of one computation
    local_max_nodes: int = 64  # graphs up to this size run in the gateway (0: never)
    local_max_bytes: int = 64 << 10  # ... when their inline leaves are this small
    kept_quota_bytes: int = 512 << 20  # durable copies of kept tensors, per tenant (0: none)
    kept_idle: float = 7 * 86400  # seconds a tenant may not call before they are released
    max_flops: float = 1e12  # floating-point operations one computation may cost
    max_deadline: float = 300.0  # seconds one Compute may run, whatever its caller asked
    max_calls_per_tenant: int = 16  # Compute calls one tenant may run at once (of 32 threads)


LOCAL_MAX_FLOPS = 1e7  # a graph that costs more runs on a worker (a deadline, cancellation)


class Gateway:
    MAX_ATTEMPTS = 3  # distinct workers one call may try when workers die under it

    def __init__(self, store, cache, pool: WorkerPool, limits: Limits = Limits(),
                 auth: Auth | None = None) -> None:
        self.store = GuardedStore(store, lambda op: metrics.REDIS_ERRORS.labels(
            f"store_{op}").inc())
        self.cache, self.pool, self.limits = cache, pool, limits
        self.auth = auth or Auth()
        # Inline leaves are remembered for later by-hash requests without waiting for a
        # shared store; an in-process one is the only copy and costs nothing to wait for.
        self.remember = WriteBehind(self.store) if self.store.shared else self.store
        self.holders = Holders()
        self.durable = Durability.for_store(self.store, self.remember, limits.kept_quota_bytes,
                                            limits.kept_idle, self.holders)
        self.counts = CacheCounts()

    # --- Compute -----------------------------------------------------------------------
    def validate(self, req: pb.ComputeRequest) -> codec.Request:
        """Every check that needs no worker: size of the graph, ops, arity, attributes,
        shapes (through the catalog), tensor sizes estimated from shapes, leaf bytes."""
        return self._validated(req)[0]

    def _validated(self, req: pb.ComputeRequest) -> tuple[codec.Request, engine.Plan, int]:
        """validate(), the graph's plan and the estimated peak bytes of the computation."""
        if len(req.graph.nodes) > self.limits.max_nodes:
            raise TooLargeError(f"graph has {len(req.graph.nodes)} nodes; the limit is "
                                f"{self.limits.max_nodes}")
        decoded = codec.decode_request(req)
        plan, _ = engine.plan(decoded.nodes, decoded.targets)  # checked once per structure
        _check_leaf_names(decoded.nodes)
        self._check_sizes(plan.graph.metas)
        # What the worker will run, gradients expanded: its largest tensor and peak memory.
        biggest, peak = of_plan(plan)
        self._check_sizes([biggest])
        if peak > self.limits.max_memory_bytes:
            raise TooLargeError(
                f"the computation needs about {peak} bytes at its peak (estimated from "
                f"shapes, gradients included), over the limit of "
                f"{self.limits.max_memory_bytes} bytes")
        check_flops(plan, self.limits.max_flops, "the gateway's")
        if len(req.targets) > self.limits.max_nodes or len(req.keep) > len(req.targets):
            raise OpError(f"{len(req.targets)} targets and {len(req.keep)} kept: at most "
                          f"{self.limits.max_nodes} targets, and no more kept than targets")
        if not set(req.keep) <= set(req.targets):
            raise OpError("keep names nodes that are not targets")
        for msg in decoded.tensor_protos.values():
            codec.decode_array(msg, verify_hash=True)
        return decoded, plan, peak

    def _check_sizes(self, metas) -> None:
        deepest = max(metas, key=lambda m: len(m.shape))
        if len(deepest.shape) > MAX_DIMS:
            raise OpError(f"a tensor of {len(deepest.shape)} dims: at most {MAX_DIMS} are "
                          "supported")
        biggest = max(metas, key=lambda m: m.nbytes)
        if biggest.nbytes > self.limits.max_tensor_bytes:
            raise TooLargeError(
                f"a tensor of shape {list(biggest.shape)} ({biggest.dtype}, {biggest.nbytes} "
                f"bytes) exceeds the limit of {self.limits.max_tensor_bytes} bytes")

    def _stage(self, decoded: codec.Request, tenant: str) -> None:
        """Remember inline leaves (off the critical path: the worker computes on the
        request's own bytes); refuse (FAILED_PRECONDITION) leaves named only by a hash the
        cluster does not hold. If the store cannot say, the worker finds out."""
        inline = decoded.tensor_protos
        for msg in inline.values():
            self.remember.put(tenant, msg)
        refs = sorted({n.attrs["hash"] for n in decoded.nodes if n.op == "leaf"} - set(inline))
        missing = self.store.missing(tenant, self.holders.unknown(tenant, refs))
        if missing:
            raise MissingTensorError(missing)

    def compute(self, req: pb.ComputeRequest, tenant: str, timeout: float | None,
                on_cancel) -> pb.ComputeResponse:
        decoded, plan, peak = self._validated(req)
        # No call runs unbounded: one without a deadline (a raw client) gets the cap.
        timeout = min(timeout if timeout is not None else math.inf, self.limits.max_deadline)
        if self.durable is not None:
            self.durable.called(tenant, req.release)
        metrics.BYTES_IN.inc(sum(len(m.data) for m in decoded.tensor_protos.values()))
        if self._runs_here(req, decoded, plan):
            return self._compute_here(req, tenant)
        first = {}  # each target's first position: linear, not an index() per kept one
        for i, t in enumerate(decoded.targets):
            first.setdefault(t, i)
        call = fingerprint(decoded.nodes, decoded.targets)
        fp = call + ":" + ",".join(str(first[k]) for k in req.keep)
        names = self._name_kept(req, plan, first, call)
        if names:  # kept again, hit or not: a release of them not yet made is dropped
            self.durable.kept_again(tenant, names.values())
        hit = self._cached(tenant, fp)  # a hit needs no leaves: look before staging
        self.counts.count(tenant, hit is not None)  # the tenant's own, for ClusterStatus
        if hit is not None:
            return hit
        metrics.CACHE.labels("miss").inc()
        self.pool.check_fits(peak)  # no worker could hold it: refused before staging
        self._stage(decoded, tenant)
        reserved = self._reserve(names, plan, first, tenant)  # RESOURCE_EXHAUSTED: no run
        try:
            resp = self._execute_recovering(self._with_leaves(req, decoded, tenant), tenant,
                                            timeout, on_cancel, peak,
                                            prefer=self.holders.most(tenant, decoded.nodes))
            self._by_reference(resp, req, tenant)  # may refuse the answer (_note_kept)
        except BaseException:
            if names:
                self.durable.unreserve(tenant, reserved)
            raise
        if names:
            self.durable.answered(tenant, reserved)
        raw = resp.SerializeToString()
        if req.keep and isinstance(self.remember, WriteBehind):
            # A step that keeps its results (training) is all but never asked again, and
            # its entry is only ever a shortcut: written behind, off the step's path.
            self.remember.later(lambda: self.cache.put(tenant, fp, raw), len(raw), "result")
        else:
            self.cache.put(tenant, fp, raw)
        return resp

    def _name_kept(self, req: pb.ComputeRequest, plan, first: dict, call: str) -> dict:
        """Name each kept target by provenance (proto/provenance.py kept_names: this
        call's fingerprint and the target's first position), in the request the worker gets
        (keep_as, parallel to keep; whatever a client put there is replaced): {target:
        name}. Without durable copies (an in-process store) kept results keep content
        names: the gateway's store is then their only copy, and checks them by hash."""
        del req.keep_as[:]
        if self.durable is None or not req.keep:
            return {}
        names = provenance.kept_names(call, list(req.targets), req.keep)
        req.keep_as.extend(names[k] for k in req.keep)
        return names

    def _reserve(self, names: dict, plan, first: dict, tenant: str) -> list[str]:
        """The kept results' sizes (from the plan's shapes and dtypes) reserved in the
        tenant's ledger before the call runs (server/durable.py Reservation)."""
        if not names:
            return []
        metas, at = plan.graph.metas, plan.targets
        return self.durable.reserve(tenant, {name: metas[at[first[k]]].nbytes
                                             for k, name in names.items()})

    def _runs_here(self, req: pb.ComputeRequest, decoded: codec.Request,
                   plan: engine.Plan) -> bool:
        """Small, self-contained graphs: one hop, no worker and no result cache (computing
        them costs less than a round trip to either), up to --local-max-nodes (0: never)."""
        lim = self.limits
        if not lim.local_max_nodes or len(decoded.nodes) > lim.local_max_nodes or req.keep:
            return False
        if flops_of_plan(plan) > LOCAL_MAX_FLOPS:
            return False
        inline = decoded.tensor_protos
        if sum(len(m.data) for m in inline.values()) > lim.local_max_bytes:
            return False
        return all(n.attrs["hash"] in inline for n in decoded.nodes if n.op == "leaf")

    def _compute_here(self, req: pb.ComputeRequest, tenant: str) -> pb.ComputeResponse:
        metrics.LOCAL.inc()
        # Leaves sent inline are kept, as for every graph: later requests may name them.
        resp = compute(req, self.store, tenant)
        resp.worker = "gateway"
        return resp

    def _cached(self, tenant: str, fp: str) -> pb.ComputeResponse | None:
        raw = self.cache.get(tenant, fp)
        if raw is None:
            return None
        try:
            resp = pb.ComputeResponse.FromString(raw)
        except Exception as e:  # noqa: BLE001  (damaged or foreign: a miss, not a failure)
            log.warning("cached result %s of tenant %s does not parse (%s); recomputing",
                        fp, tenant, e)
            return None
        refs = [r.hash for r in resp.results if not r.data and _nbytes(r)]
        if refs and self.store.missing(tenant, refs) != []:
            return None  # a referenced value was evicted (or cannot be checked): recompute
        metrics.CACHE.labels("hit").inc()
        resp.cache_hit, resp.worker = True, ""
        return resp

    def _with_leaves(self, req, decoded: codec.Request, tenant: str) -> pb.ComputeRequest:
        """Workers read leaves from a shared store themselves; from an in-process store
        the gateway attaches them. The inline bound goes with the call (the gateway's,
        not a client's): a worker with the shared store stores larger results itself."""
        if self.store.shared:
            req.inline_result_bytes = self.limits.inline_result_bytes
            return req
        forward = pb.ComputeRequest()
        forward.CopyFrom(req)
        forward.ClearField("inline_result_bytes")
        have = set(decoded.tensor_protos)
        for n in decoded.nodes:
            h = n.attrs.get("hash") if n.op == "leaf" else None
            if h and h not in have:
                msg = self.store.get(tenant, h)
                if msg is None:
                    raise MissingTensorError([h])
                forward.tensors.append(msg)
                have.add(h)
        return forward

    def _by_reference(self, resp: pb.ComputeResponse, req: pb.ComputeRequest,
                      tenant: str) -> None:
        """Store kept and large results and answer them by hash (if the store works).
        Large counts for the whole answer: once the inline results reach
        inline_result_bytes, the rest go by reference too, so that no answer (many
        targets, or one listed many times) is a message much larger than that."""
        kept = set(req.keep)  # once, not per target
        keep = {i for i, t in enumerate(req.targets) if t in kept}
        if req.keep_as:  # named by provenance: held and written behind by the worker
            self._note_kept(resp, req, keep, tenant)
        inline, limit = 0, self.limits.inline_result_bytes
        for i, r in enumerate(resp.results):
            if req.keep_as and i in keep:
                continue
            if i not in keep and not r.data and r.hash:
                continue  # stored by its worker past the inline bound (worker/by_reference.py)
            if i not in keep and inline + len(r.data) <= limit:
                inline += len(r.data)
                continue
            codec.ensure_hash(r)  # kept ones come hashed by their worker; large ones not
            if i in keep and resp.worker:
                self.holders.note(tenant, r.hash, resp.worker, len(r.data))
            if self.store.put(tenant, r):
                r.data = b""

    def _note_kept(self, resp: pb.ComputeResponse, req: pb.ComputeRequest, keep: set[int],
                   tenant: str) -> None:
        """Where the kept results live (their worker; server/holders.py) and, until their
        copies exist, the request that made them (server/lineage.py). The worker answered
        them by reference: no bytes reach the gateway."""
        positions = {}
        for i in sorted(keep):
            r = resp.results[i]
            if r.data or not keys.is_digest(r.hash):
                raise OpError(f"the worker answered kept result {i} with bytes or without "
                              "its name: a worker older than this gateway?")
            positions.setdefault(r.hash, i)
            if resp.worker:
                self.holders.note(tenant, r.hash, resp.worker, _nbytes(r),
                                  (r.dtype, tuple(r.shape)))
        self.durable.produced(tenant, req, positions)

    def _execute_recovering(self, req, tenant, timeout, on_cancel, need: int,
                            prefer: str | None, depth: int = 0) -> pb.ComputeResponse:
        """_execute; if the worker found kept tensors missing whose holder died before
        their durable copies were written, their producing requests run again on another
        worker (server/durable.py, server/lineage.py; those may recover their own inputs),
        which then holds them, and the call goes there."""
        try:
            return self._execute(req, tenant, timeout, on_cancel, need, prefer)
        except grpc.RpcError as e:
            lost = _missing_of(e) if self.durable is not None and depth < 8 else []
            where = self.durable.recover(tenant, lost, lambda r, at: self._recomputed(
                r, tenant, timeout, on_cancel, at, depth + 1)) if lost else None
            if where is None:
                raise
        log.warning("%d kept tensors had lost their holder before their durable copies "
                    "were written; computed again on %s", len(lost), where)
        return self._execute_recovering(req, tenant, timeout, on_cancel, need, where,
                                        depth + 1)

    def _recomputed(self, req, tenant, timeout, on_cancel, prefer, depth):
        """A producing request run again (recovery): its kept results' new holder noted."""
        resp = self._execute_recovering(req, tenant, timeout, on_cancel, 0, prefer, depth)
        kept = set(req.keep)
        for t, r in zip(req.targets, resp.results):
            if t in kept and resp.worker and not r.data:
                self.holders.note(tenant, r.hash, resp.worker, _nbytes(r),
                                  (r.dtype, tuple(r.shape)))
        return resp

    def _execute(self, req, tenant, timeout, on_cancel, need: int = 0,
                 prefer: str | None = None) -> pb.ComputeResponse:
        """Run on the least-loaded worker whose memory limit admits `need` bytes. Compute is
        pure, so the same request may also go elsewhere: to a second worker when the first
        has not answered within the hedge delay (the first answer wins, the other call is
        cancelled), and to another when one went away, up to MAX_ATTEMPTS workers within
        the deadline."""
        deadline = None if timeout is None else time.monotonic() + timeout
        metadata = (("x-request-id", request_id.get()), ("x-tenant", tenant))
        calls = Calls(self.pool, lambda w: w.stub.Execute.future(
            req, timeout=_left(deadline), metadata=metadata))
        on_cancel(calls.cancel)
        try:
            return self._first_answer(calls, deadline, need, prefer)
        finally:
            calls.close()

    def _first_answer(self, calls: Calls, deadline, need: int, prefer: str | None = None
                      ) -> pb.ComputeResponse:
        tried: list = []
        self._start(calls, tried, need, prefer)
        delay = self.pool.latencies.delay(need)
        hedge_at = time.monotonic() + delay
        while True:
            wait = None if hedge_at is None else max(0.0, hedge_at - time.monotonic())
            done = calls.next_done(wait)
            if done is None:  # nothing answered within the hedge delay
                hedge_at = None
                self._hedge(calls, tried, deadline, delay, need)
                continue
            w, fut, seconds = done
            try:
                resp = fut.result()
                WORKER_ANSWER_BYTES.inc(resp.ByteSize())
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not calls.client_gone \
                        and self._late(seconds, need):
                    self.pool.missed(w)
                if not self._after_failure(e, w, calls, tried, deadline):
                    raise
                if not calls.pending():
                    self._start(calls, tried, need)  # a retry elsewhere
                    metrics.RETRIES.inc()
                    hedge_at = time.monotonic() + delay
                continue
            self.pool.answered(w, seconds, need)
            for loser, started in calls.pending():
                if started < time.monotonic() - seconds:  # it had longer, and no answer
                    self.pool.missed(loser)
            if calls.hedged:
                HEDGES.labels("hedge" if w is tried[-1] else "first").inc()
            return resp

    def _late(self, seconds: float, need: int) -> bool:
        """Whether a call that ran out of time after `seconds` had longer than computations
        of its size take (a deadline too short for a large graph is not the worker's miss)."""
        lat = self.pool.latencies
        return lat.known(need) and seconds > lat.delay(need)

    def _start(self, calls: Calls, tried: list, need: int, prefer: str | None = None) -> None:
        try:
            w = self.pool.acquire(exclude=tuple(tried), need=need, prefer=prefer)
        except NoWorkersError:
            if not tried:
                raise
            raise NoWorkersError(f"no live workers are registered (the {len(tried)} "
                                 "that took this call went away)") from None
        tried.append(w)
        self.pool.hedges.earn()
        calls.start(w)

    def _hedge(self, calls: Calls, tried: list, deadline, delay: float, need: int) -> None:
        """A second call, when the deadline leaves time for it, the budget allows one and
        another worker can take it."""
        if len(tried) >= self.MAX_ATTEMPTS or calls.client_gone:
            return
        if deadline is not None and deadline - time.monotonic() < 2 * delay:
            return
        if not self.pool.hedges.spend():
            return
        try:
            self._start(calls, tried, need)
        except (NoWorkersError, PoolBusyError, NoWorkerFitsError):
            return  # nobody else to ask: keep waiting for the first
        calls.hedged = True
        log.info("worker %s has not answered in %.3fs; hedging to %s", tried[-2].address,
                 delay, tried[-1].address)

    def _after_failure(self, e: grpc.RpcError, w, calls: Calls, tried: list,
                       deadline) -> bool:
        """Whether the call may still be answered (by the other call in flight, or by a
        retry elsewhere) after `w` failed with `e`."""
        if e.code() == grpc.StatusCode.UNAUTHENTICATED:  # never the caller's token
            log.error("worker %s refused this gateway: %s", w.address, e.details())
            raise WorkerRefusedError(
                f"worker {w.address} refused the gateway ({e.details()}): the gateway's "
                "and the workers' worker secrets (REMOTEGRAD_WORKER_SECRET) differ") from None
        if calls.client_gone:
            return False
        if self.pool.busy(w, e):  # at its own bound: not a failure; another may take it
            return bool(calls.pending()) or (len(tried) < self.MAX_ATTEMPTS
                                             and self.pool.has_other(tried))
        # A worker that died answers UNAVAILABLE; one shutting down may cancel.
        if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return False
        self.pool.mark_dead(w)
        log.warning("worker %s went away during a call (%s); %s", w.address, e.code().name,
                    "waiting for the hedged call" if calls.pending() else "retrying elsewhere")
        if calls.pending():
            return True
        out_of_time = deadline is not None and time.monotonic() >= deadline
        return not out_of_time and len(tried) < self.MAX_ATTEMPTS

    # --- streamed tensors --------------------------------------------------------------
    def put_tensor(self, chunks, tenant: str) -> pb.PutTensorResponse:
        msg = codec.from_chunks(_named(chunks), self.limits.max_tensor_bytes)
        metrics.BYTES_IN.inc(len(msg.data))
        if not self.store.put(tenant, msg):
            # Redis down or failing over: retryable (the SDK waits within its window).
            raise StoreUnavailableError(f"the tensor store could not keep {msg.hash} now")
        return pb.PutTensorResponse(hash=msg.hash, bytes_received=len(msg.data))

    def has_tensors(self, digests: list[str], tenant: str) -> list[bool]:
        if len(digests) > MAX_HASHES:
            raise OpError(f"HasTensors of {len(digests)} hashes: at most {MAX_HASHES} a call")
        for d in digests:
            keys.check_digest(d)
        missing = self.store.missing(tenant, digests) if digests else []
        missing = set(digests if missing is None else missing)
        # Read-your-writes: a kept result whose copy its holder has not written yet is
        # there all the same (the holder has it; its lineage can make it again).
        return [d not in missing or self._unwritten(tenant, d) for d in digests]

    def _unwritten(self, tenant: str, digest: str) -> bool:
        """Whether `digest` is a kept result of `tenant` whose copy is still on its way."""
        return self.durable is not None and self.durable.pending(tenant, digest)

    def fetch_tensor(self, digest: str, tenant: str):
        """The tensor's chunks, read from the store as they are sent (server/fetch.py):
        never the whole tensor in the gateway's memory; a kept result whose copy is not
        written yet comes from its holder (read-your-writes)."""
        keys.check_digest(digest)
        source = fetch.chunks(self.store, tenant, digest)
        if self._unwritten(tenant, digest):
            try:
                first = next(source)
            except Exception:  # noqa: BLE001  (missing, or the store failed: the holder)
                first = None
            if first is None:
                source = codec.to_chunks(self._from_holder(digest, tenant), codec.STREAM_CHUNK)
            else:
                source = itertools.chain([first], source)
        for chunk in source:
            metrics.BYTES_OUT.inc(len(chunk.data))
            yield chunk

    def _from_holder(self, name: str, tenant: str) -> pb.TensorData:
        """A kept result read from the worker that holds it: a one-leaf graph through
        Worker/Execute (computed again from its lineage if its holder is gone)."""
        where = self.holders.where(tenant, name)
        if where is None or where[2] is None:
            raise MissingTensorError([name])
        worker, nbytes, (dtype, shape) = where
        nodes = [codec.WireNode(0, "leaf", (), {"hash": name, "dtype": dtype,
                                                "shape": shape})]
        req = codec.encode_request(nodes, [], [0])
        resp = self._execute_recovering(req, tenant, self.limits.max_deadline,
                                        lambda cb: None, nbytes, worker)
        msg = resp.results[0]
        msg.hash = name
        return msg


MAX_DIMS = 64  # what NumPy (and so every backend) supports
MAX_HASHES = 1 << 16  # per HasTensors call (the SDK asks for one request's large leaves)


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _named(chunks):
    """A tensor stream whose first chunk names a digest (refused before anything is
    allocated for it otherwise)."""
    for i, chunk in enumerate(chunks):
        if i == 0:
            keys.check_digest(chunk.hash)
        yield chunk


def _check_leaf_names(nodes) -> None:
    """Leaves are named by content digests: nothing else may reach a store's keys."""
    for n in nodes:
        if n.op == "leaf" and not keys.is_digest(n.attrs.get("hash")):
            raise OpError(f"node {n.id}: leaf hash {str(n.attrs.get('hash'))[:80]!r} is not "
                          "a tensor digest (32 lowercase hex characters)")


def _missing_of(err: grpc.RpcError) -> list[str]:
    """The digests a worker's FAILED_PRECONDITION names as missing (its trailer)."""
    if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return []
    for key, value in err.trailing_metadata() or ():
        if key == MISSING_KEY:
            return [d for d in value.split(",") if keys.is_digest(d)]
    return []


def _nbytes(r: pb.TensorData) -> int:
    from remotegrad.proto.catalog import ITEMSIZE
    n = ITEMSIZE.get(r.dtype, 1)
    for s in r.shape:
        n *= s
    return n


class Undecodable:
    """A request whose bytes are not the message the method takes."""

    def __init__(self, kind: str, error: Exception) -> None:
        self.kind, self.error = kind, error


def _lenient(cls):
    def parse(raw: bytes):
        try:
            return cls.FromString(raw)
        except Exception as e:  # noqa: BLE001  (DecodeError, RecursionError, ...)
            return Undecodable(cls.__name__, e)
    return parse


def _decoded(request):
    if isinstance(request, Undecodable):
        raise OpError(f"the request is not a valid {request.kind} message: {request.error}")
    return request


def _decoded_stream(requests):
    for r in requests:
        yield _decoded(r)


def add_gateway_to_server(servicer: GatewayServicer, server: grpc.Server) -> None:
    """Register the Gateway service like the generated helper does, but with parsing that
    never fails inside gRPC: bytes that are not the expected message reach the servicer,
    which answers INVALID_ARGUMENT with the parser's reason (gRPC itself says INTERNAL)."""
    service = pb.DESCRIPTOR.services_by_name["Gateway"]
    kinds = {(False, False): grpc.unary_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler,
             (True, False): grpc.stream_unary_rpc_method_handler,
             (True, True): grpc.stream_stream_rpc_method_handler}
    handlers = {}
    for m in service.methods:
        make = kinds[(m.client_streaming, m.server_streaming)]
        handlers[m.name] = make(getattr(servicer, m.name),
                                request_deserializer=_lenient(getattr(pb, m.input_type.name)),
                                response_serializer=getattr(pb, m.output_type.name)
                                .SerializeToString)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))


class GatewayServicer(pb_grpc.GatewayServicer):
    """Thin: the request id into the log context, the call to Gateway, errors to status."""

    def __init__(self, gateway: Gateway, streams: StreamGate | None = None) -> None:
        self.gw = gateway
        self.streams = streams or StreamGate()
        self.calls = TenantCalls(gateway.limits.max_calls_per_tenant)

    def _tenant(self, context: grpc.ServicerContext) -> str:
        tenant = self.gw.auth.tenant(context.invocation_metadata())
        if tenant is None:  # the interceptor refuses these first; never serve them
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown token")
        return tenant

    @contextlib.contextmanager
    def _served(self, method: str, context):
        """One call's frame: its request id, its status from what it raised, its metrics."""
        token = request_id.set(request_id_of(context))
        start = time.perf_counter()
        code = "OK"
        try:
            yield
        except Exception as e:  # noqa: BLE001  (every failure becomes a status)
            code = abort_code(e)
            log.info("%s refused (%s): %s", method, code, e)
            abort(context, e)
        finally:
            metrics.CALLS.labels("gateway", method, code).inc()
            metrics.LATENCY.labels("gateway", method).observe(time.perf_counter() - start)
            try:
                request_id.reset(token)
            except ValueError:  # a stream closed elsewhere (the client left; collected later)
                pass

    def _run(self, method: str, context, fn):
        with self._served(method, context):
            return fn()

    def _run_stream(self, method: str, context, fn):
        """_run for a server stream: `fn()` makes the generator, each item is sent as it
        comes (the call's metrics are taken when the stream ends)."""
        with self._served(method, context):
            yield from fn()

    def Compute(self, request, context):  # noqa: N802 (gRPC method name)
        def run():
            tenant = self._tenant(context)
            with self.calls.admit(tenant):  # RESOURCE_EXHAUSTED past the tenant's share
                resp = self.gw.compute(_decoded(request), tenant, context.time_remaining(),
                                       context.add_callback)
            metrics.BYTES_OUT.inc(sum(len(t.data) for t in resp.results))
            return resp
        return self._run("Compute", context, run)

    def HasTensors(self, request, context):  # noqa: N802
        return self._run("HasTensors", context, lambda: pb.HasTensorsResponse(
            present=self.gw.has_tensors(list(_decoded(request).hashes),
                                        self._tenant(context))))

    def PutTensor(self, request_iterator, context):  # noqa: N802
        def run():
            tenant = self._tenant(context)
            with self.streams.admit(tenant, context) as counted:  # bounded, watched
                return self.gw.put_tensor(counted(_decoded_stream(request_iterator)), tenant)
        return self._run("PutTensor", context, run)

    def FetchTensor(self, request, context):  # noqa: N802
        # Streamed as read: a failure before the first chunk (a missing tensor, a bad
        # digest) or during the stream ends the call with its status all the same. Each
        # fetch holds a thread and a stored chunk while it lasts: admitted, and watched
        # for a client that stops reading, like PutTensor's streams (server/streams.py).
        def run():
            tenant = self._tenant(context)
            with self.streams.admit(tenant, context, outgoing=True) as sent:
                yield from sent(self.gw.fetch_tensor(_decoded(request).hash, tenant))
        yield from self._run_stream("FetchTensor", context, run)

    def ClusterStatus(self, request, context):  # noqa: N802
        def run():
            _decoded(request)
            # An operator sees the cluster; a tenant only what is its own (server/scope.py).
            operator = self.gw.auth.operator(context.invocation_metadata())
            return cluster_status(self.gw.pool, self.gw.counts, self._tenant(context),
                                  operator)
        return self._run("ClusterStatus", context, run)


def abort_code(err: Exception) -> str:
    from remotegrad.proto.status import status_of
    return status_of(err)[0].name
