"""Kept tensors made durable without the critical path, within each tenant's quota.

A call that keeps results (a training step's parameters and optimiser state) is answered
once the worker has them; their bytes are then written behind (server/write_behind.py)
to the shared store's durable copies (proto/kept.py): no TTL, never evicted by the
cluster's volatile-lru Redis. What the call waits for is one small script on the
tenant's ledger, which reserves the copies' bytes against --kept-quota-bytes: over it,
the call is refused with RESOURCE_EXHAUSTED and nothing of anyone else is evicted.

A copy goes when the client releases it (the SDK names what it no longer references in
ComputeRequest.release; the names are kept here and settled with the tenant's next
reservation, or within a second) or when its tenant has not called for --kept-idle
seconds (a sweep, by every gateway, of the tenants with a ledger).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from remotegrad.proto import keys
from remotegrad.proto.catalog import OpError
from remotegrad.proto.codec import TooLargeError
from remotegrad.proto.kept import KeptCopies
from remotegrad.proto.store import Breaker

from .lineage import Lineage, Origin

log = logging.getLogger("remotegrad.gateway")


MAX_RELEASED = 1 << 16  # names one request may release (the SDK sends at most 4096)


class QuotaExceededError(TooLargeError):
    """A tenant's kept tensors would pass its quota (RESOURCE_EXHAUSTED)."""


class Durability:
    SETTLE_EVERY = 1.0  # seconds: releases and last-seen times wait at most this long
    UNPERSISTED_BYTES = 512 << 20  # kept bytes held here until their copies are written

    def __init__(self, kept: KeptCopies, behind, quota: int, idle: float,
                 holders=None, clock=time.time, unpersisted: int | None = None) -> None:
        self.kept, self.behind, self.quota, self.idle = kept, behind, quota, idle
        self.holders, self.clock = holders, clock
        if unpersisted is not None:
            self.UNPERSISTED_BYTES = unpersisted
        self.lineage = Lineage()
        self._deferred: dict[str, set[str]] = {}  # releases lineage still reads
        self._breaker = Breaker("kept copies")
        self._lock = threading.Lock()  # the maps below
        # One settle at a time per tenant, its writes and deletes queued in that order (a
        # release before a later copy of the same name); tenants do not wait for each other.
        self._tenant_locks: dict[str, threading.Lock] = {}
        self._released: dict[str, set[str]] = {}
        self._active: set[str] = set()
        self._noted: dict[str, float] = {}  # tenants written to the tenants' set, when
        # Kept tensors whose durable copy is not written yet (queued, or the write failed):
        # their bytes, so that a call whose holder died before the copy landed is answered
        # from them (recover) instead of failing. Bounded: the oldest go first.
        self._unpersisted: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._unpersisted_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sweep, name="remotegrad-kept-sweep",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def for_store(cls, store, behind, quota: int, idle: float, holders=None,
                  unpersisted: int | None = None):
        """A Durability over the store's kept copies (None for a store without them: an
        in-process store is the only copy there is)."""
        kept = getattr(getattr(store, "inner", store), "kept", None)
        if kept is None:
            return None
        _check_policy(kept.redis)
        return cls(kept, behind, quota, idle, holders, unpersisted=unpersisted)

    # --- what calls do -----------------------------------------------------------------
    def called(self, tenant: str, released) -> None:
        """A call of `tenant`, releasing `released` (hashes): noted, settled later."""
        if len(released) > MAX_RELEASED:
            raise OpError(f"a request releases {len(released)} tensors: at most "
                          f"{MAX_RELEASED} a call")
        released = [d for d in released if keys.is_digest(d)]  # others name nothing kept
        with self._lock:
            self._active.add(tenant)
            for d in released:
                self._drop_unpersisted(tenant, d)
                self._lineage_done(self.lineage.done(tenant, d))
                later = self.lineage.needed(tenant, d)  # a pending recomputation reads it
                (self._deferred if later else self._released).setdefault(
                    tenant, set()).add(d)
        if released and self.holders is not None:
            self.holders.forget(released)

    def admit(self, tenant: str, results, origin=None) -> None:
        """Reserve durable copies of `results` (kept TensorData, hashed, with bytes) and
        write them behind; QuotaExceededError if they would pass the tenant's quota.
        Copies of the bytes are queued, so the caller may strip the results. Until a
        copy is written, its bytes (bounded) and its lineage (`origin`: the producing
        request and each digest's position in its answer) are kept here (recover)."""
        sizes = {r.hash: len(r.data) for r in results}
        with self._tenant_lock(tenant):
            with self._lock:
                released = self._released.pop(tenant, set()) - set(sizes)
            settled = self._breaker.call(
                "settle", lambda: self.kept.settle(tenant, released, sizes, self.quota,
                                                   self.clock()), None, tenant)
            if settled is None:  # the store is down: the bytes wait here (recover)
                with self._lock:
                    self._released.setdefault(tenant, set()).update(released)
                    for msg in results:
                        self._hold_unpersisted(tenant, msg)
                    self._note_lineage(tenant, origin, [r.hash for r in results])
                return
            self._after(tenant, settled)
            if settled.refused:
                raise QuotaExceededError(
                    f"tenant {tenant!r} keeps {settled.used} bytes of tensors in the cluster; "
                    f"{sum(sizes[d] for d in sizes)} more would pass its quota of "
                    f"{self.quota} bytes (--kept-quota-bytes): drop references to tensors "
                    "it no longer needs, or ask for a larger quota")
            with self._lock:
                self._note_lineage(tenant, origin, settled.new)
            for msg in results:
                if msg.hash in settled.new:
                    with self._lock:
                        copy = self._hold_unpersisted(tenant, msg)
                    self._write_behind(tenant, copy)

    def _write_behind(self, tenant: str, msg) -> None:
        self.behind.later(lambda: self._write(tenant, msg), len(msg.data), msg.hash)

    def _write(self, tenant: str, msg) -> None:
        self.kept.write(tenant, msg)  # a failure is logged; bytes and lineage stay
        with self._lock:
            self._drop_unpersisted(tenant, msg.hash)
            self._lineage_done(self.lineage.done(tenant, msg.hash))

    def _note_lineage(self, tenant: str, origin, digests) -> None:
        """(self._lock held)"""
        if origin is not None and digests:
            req, positions = origin
            self._lineage_done(self.lineage.note(tenant, Origin(req, positions), digests))

    def _lineage_done(self, freed) -> None:
        """Names no pending lineage reads any more: their deferred releases go now
        (self._lock held)."""
        for tenant, name in freed:
            deferred = self._deferred.get(tenant)
            if deferred and name in deferred:
                deferred.discard(name)
                self._released.setdefault(tenant, set()).add(name)
                self._active.add(tenant)

    def _tenant_lock(self, tenant: str) -> threading.Lock:
        with self._lock:
            return self._tenant_locks.setdefault(tenant, threading.Lock())

    def _hold_unpersisted(self, tenant: str, msg):
        """A copy of `msg`'s bytes, held until its durable copy is written (self._lock
        held)."""
        key = (tenant, msg.hash)
        copy = self._unpersisted.get(key)
        if copy is None:
            copy = type(msg)()
            copy.CopyFrom(msg)
            self._unpersisted[key] = copy
            self._unpersisted_bytes += len(copy.data)
            while self._unpersisted_bytes > self.UNPERSISTED_BYTES and self._unpersisted:
                (t, d), old = self._unpersisted.popitem(last=False)
                self._unpersisted_bytes -= len(old.data)
                log.info("kept tensor %s of tenant %s: its bytes wait for their durable "
                         "copy no longer (--kept-unpersisted-bytes); its lineage does", d, t)
        return copy

    def _drop_unpersisted(self, tenant: str, digest: str) -> None:
        old = self._unpersisted.pop((tenant, digest), None)
        if old is not None:
            self._unpersisted_bytes -= len(old.data)

    def unwritten(self, tenant: str, digest: str):
        """The bytes of a kept tensor whose durable copy is not written yet, else None: a
        tenant reads its own kept results at once (HasTensors, FetchTensor right after the
        Compute that made them), not only after the write behind lands."""
        with self._lock:
            return self._unpersisted.get((tenant, digest))

    def recover(self, tenant: str, digests, recompute=None) -> list | None:
        """The bytes of kept tensors a worker found missing (their holder died before
        their copies were written): held here, or computed again by `recompute(request)`
        (a ComputeResponse) from their lineage; None if any of them is neither."""
        with self._lock:
            found = {d: self._unpersisted.get((tenant, d)) for d in digests}
            origins = {d: self.lineage.origin(tenant, d) for d, m in found.items()
                       if m is None}
        if not found or any(o is None for o in origins.values()) or \
                (origins and recompute is None):
            return None
        answers: dict[int, object] = {}
        for d, origin in origins.items():
            if id(origin) not in answers:  # one run per producing request
                log.warning("kept tensor %s of tenant %s lost its holder before its "
                            "durable copy was written: computing it again", d, tenant)
                answers[id(origin)] = recompute(origin.req)
            msg = answers[id(origin)].results[origin.positions[d]]
            if msg.hash != d or not msg.data:
                log.warning("kept tensor %s computed again came out as %r: not used", d,
                            msg.hash)
                return None
            with self._lock:
                found[d] = self._hold_unpersisted(tenant, msg)
            self._write_behind(tenant, found[d])  # and persisted, this time perhaps
        return [found[d] for d in digests]

    def _after(self, tenant: str, settled) -> None:
        """Delete the released copies (behind, in order) and note the tenant."""
        if settled.freed:
            freed = list(settled.freed)
            self.behind.later(lambda: self.kept.delete(tenant, freed), 0, "release")
        now = time.monotonic()
        if now - self._noted.get(tenant, -1e9) > 30.0:  # again now and then: Redis restarts
            self._noted[tenant] = now
            self.behind.later(lambda: self.kept.note_tenant(tenant), 0, "tenant")

    # --- in the background -------------------------------------------------------------
    def settle_pending(self) -> None:
        """Settle the releases and last-seen times of tenants that called since the
        last time (those that kept something settled theirs already)."""
        with self._lock:
            active, self._active = self._active, set()
        for tenant in active:
            with self._tenant_lock(tenant):
                with self._lock:
                    released = self._released.pop(tenant, set())
                settled = self._breaker.call(
                    "settle", lambda t=tenant, r=released: self.kept.settle(
                        t, r, {}, self.quota, self.clock()), None, tenant)
                if settled is None:
                    with self._lock:
                        self._released.setdefault(tenant, set()).update(released)
                    continue
                self._after(tenant, settled)

    def forget_idle(self) -> None:
        """Release everything of tenants that have not called for --kept-idle seconds."""
        if self.idle <= 0:
            return
        since = self.clock() - self.idle
        tenants = self._breaker.call("tenants", self.kept.tenants, [])
        for tenant in tenants:
            held = self._breaker.call("forget", lambda t=tenant: self.kept.forget_if_idle(
                t, since), None, tenant)
            if held is None:
                continue
            if held:
                log.info("tenant %s idle for over %gs: released its %d kept tensors",
                         tenant, self.idle, len(held))
                if self.holders is not None:
                    self.holders.forget(held)
            self.kept.delete(tenant, list(held))
            self.kept.drop_tenant(tenant)

    def _sweep(self) -> None:
        every = min(60.0, max(self.SETTLE_EVERY, self.idle / 10)) if self.idle > 0 else 0
        next_idle = time.monotonic() + every
        while not self._stop.wait(self.SETTLE_EVERY):
            try:
                self.settle_pending()
                if every and time.monotonic() >= next_idle:
                    next_idle = time.monotonic() + every
                    self.forget_idle()
            except Exception:  # noqa: BLE001  (the sweep must go on)
                log.exception("kept tensors' sweep failed")

    def close(self) -> None:
        self._stop.set()


def _check_policy(redis) -> None:
    """Warn when the shared Redis may evict keys without a TTL (allkeys-*): the durable
    copies would then be evicted like the cache (a managed Redis may refuse CONFIG)."""
    try:
        policy = redis.config_get("maxmemory-policy").get("maxmemory-policy", "")
    except Exception:  # noqa: BLE001  (CONFIG disabled or Redis not up yet: say nothing)
        return
    policy = policy.decode() if isinstance(policy, bytes) else str(policy)
    if policy.startswith("allkeys"):
        log.warning("Redis runs maxmemory-policy %s: it may evict kept tensors' durable "
                    "copies; run it with volatile-lru (see proto/kept.py)", policy)
