"""Kept tensors made durable without the critical path, within each tenant's quota.

A call that keeps results (a training step's parameters and optimiser state) names them
before it runs (ComputeRequest.keep_as: proto/keys.py kept_name, from the call's
fingerprint), reserves their sizes (from the plan's shapes and dtypes) in the tenant's
ledger (one small script: proto/kept.py settle) against --kept-quota-bytes, and only then
goes to a worker: over the quota it is refused with RESOURCE_EXHAUSTED, nothing runs and
nothing of anyone else is evicted. A call that fails gives back what it reserved (names
that existed before it stay). The worker holds the results and writes their durable
copies behind itself (worker/held.py): this gateway never receives their bytes.

Until a copy exists, its producing request is its lineage (server/lineage.py): a holder
that dies first is covered by computing the request again on another worker. The gateway
learns that a copy exists by asking the store (the sweep, every second), not from bytes.

A copy goes when the client releases it (the SDK names what it no longer references in
ComputeRequest.release; the names are kept here and settled with the tenant's next
reservation, or within a second) or when its tenant has not called for --kept-idle
seconds (a sweep, by every gateway, of the tenants with a ledger). A release waits while
a pending lineage reads the name (the recomputation needs it) or while the name's own
copy is still on its way (deleting it first would leave the late copy behind, uncounted).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

from remotegrad.proto import keys
from remotegrad.proto.catalog import OpError
from remotegrad.proto.codec import TooLargeError
from remotegrad.proto.kept import KeptCopies
from remotegrad.proto.store import Breaker

from .lineage import Lineage, Origin

log = logging.getLogger("remotegrad.gateway")


MAX_RELEASED = 1 << 16  # names one request may release (the SDK sends at most 4096)
NOTE_EVERY = 30.0  # seconds between writes of a tenant to the set of tenants with a ledger


class QuotaExceededError(TooLargeError):
    """A tenant's kept tensors would pass its quota (RESOURCE_EXHAUSTED)."""


class Reservation(list):
    """What reserve() did for one call: the names it reserved now (the list), and what
    ending the call needs (answered() or unreserve()): the tenant, every kept name's
    bytes, and whether the ledger counted them (not with the store down)."""

    def __init__(self, tenant: str, sizes: dict[str, int], new, counted: bool) -> None:
        super().__init__(new)
        self.tenant, self.sizes, self.counted = tenant, sizes, counted


class Durability:
    SETTLE_EVERY = 1.0  # seconds: releases, last-seen times and landed copies are seen

    def __init__(self, kept: KeptCopies, behind, quota: int, idle: float,
                 holders=None, clock=time.time) -> None:
        self.kept, self.behind, self.quota, self.idle = kept, behind, quota, idle
        self.holders, self.clock = holders, clock
        self.lineage = Lineage()
        self._deferred: dict[str, set[str]] = {}  # releases that wait (see the module)
        self._breaker = Breaker("kept copies")
        self._lock = threading.Lock()  # the maps below and the lineage
        # One settle at a time per tenant, its deletes queued in that order; tenants do
        # not wait for each other. [lock, users]: held only while used (every tenant ever
        # seen would keep one otherwise).
        self._tenant_locks: dict[str, list] = {}
        self._released: dict[str, set[str]] = {}
        # Copies answered while the ledger could not count them: counted (whatever the
        # quota) with the tenant's next settle. {tenant: {name: bytes}}
        self._uncounted: dict[str, dict[str, int]] = {}
        # Calls under way that reserved a name: (tenant, name) -> [calls, answered by one,
        # made new by one]. A name one of them made new goes if none of them answers it.
        self._calls: dict[tuple[str, str], list] = {}
        self._active: set[str] = set()
        self._skipped: set[tuple[str, str]] = set()  # copies skipped, lineage still needed
        self._noted: dict[str, float] = {}  # tenants written to the tenants' set, when
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sweep, name="remotegrad-kept-sweep",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def for_store(cls, store, behind, quota: int, idle: float, holders=None):
        """A Durability over the store's kept copies (None for a store without them: an
        in-process store is the only copy there is)."""
        kept = getattr(getattr(store, "inner", store), "kept", None)
        if kept is None:
            return None
        _check_policy(kept.redis)
        return cls(kept, behind, quota, idle, holders)

    # --- what calls do -----------------------------------------------------------------
    def called(self, tenant: str, released) -> None:
        """A call of `tenant`, releasing `released` (names): noted, settled later."""
        if len(released) > MAX_RELEASED:
            raise OpError(f"a request releases {len(released)} tensors: at most "
                          f"{MAX_RELEASED} a call")
        released = [d for d in released if keys.is_digest(d)]  # others name nothing kept
        with self._lock:
            self._active.add(tenant)
            deferred = self._deferred.setdefault(tenant, set())
            for d in released:
                deferred.add(d)
                self._maybe_release(tenant, d)
            if not deferred:  # (one empty set per tenant ever seen otherwise)
                self._deferred.pop(tenant, None)
        if released and self.holders is not None:
            self.holders.forget(tenant, released)

    def reserve(self, tenant: str, sizes: dict[str, int]) -> Reservation:
        """Reserve the durable copies of a call's kept results ({name: bytes}) before it
        runs: QuotaExceededError if they would pass the tenant's quota (nothing is
        reserved then). The Reservation (a list of the names reserved now; those that
        existed stay as they were) is ended by answered() or, should the call fail,
        unreserve(). With the store down nothing can be counted: the call runs (its
        holder and its lineage keep what it keeps), and its copies are counted with the
        next settle that reaches the store, if it is answered."""
        with self._tenant_lock(tenant):
            settled = self._settle(tenant, sizes)
            if settled is None or not settled.refused:
                out = Reservation(tenant, sizes, settled.new if settled else [],
                                  settled is not None)
                self._begin(out)
                return out
        raise QuotaExceededError(
            f"tenant {tenant!r} keeps {settled.used} bytes of tensors in the cluster; "
            f"{sum(sizes.values())} more would pass its quota of {self.quota} bytes "
            "(--kept-quota-bytes): drop references to tensors it no longer needs, or "
            "ask for a larger quota")

    def answered(self, tenant: str, reserved: Reservation) -> None:
        """The call that made `reserved` (a Reservation) was answered: its names are the
        client's (uncounted ones are counted with the tenant's next settle)."""
        self._end(reserved, True)

    def kept_again(self, tenant: str, names) -> None:
        """A call keeps `names` (its provenance names) again, answered from the result
        cache or computed: a release of them the SDK sent before (or with it), waiting or
        not yet settled, is dropped, or it would delete the copies this answer names (a
        settle already under way for the tenant is waited for)."""
        with self._tenant_lock(tenant), self._lock:
            for where in (self._released, self._deferred):
                found = where.get(tenant)
                if found:
                    found.difference_update(names)
                    if not found:
                        del where[tenant]

    def unreserve(self, tenant: str, reserved: Reservation) -> None:
        """A call that reserved `reserved` failed: the names it made new go with a next
        settle, unless another call that reserved them meanwhile is answered (a copy a
        worker wrote all the same is deleted with them, once it has landed if the call got
        as far as its lineage)."""
        self._end(reserved, False)

    def _begin(self, res: Reservation) -> None:
        with self._lock:
            for name in res.sizes:
                entry = self._calls.setdefault((res.tenant, name), [0, False, False])
                entry[0] += 1
            for name in res:
                self._calls[(res.tenant, name)][2] = True

    def _end(self, res: Reservation, answered: bool) -> None:
        with self._lock:
            if answered and not res.counted:
                self._uncounted.setdefault(res.tenant, {}).update(res.sizes)
                self._active.add(res.tenant)
            for name in res.sizes:
                entry = self._calls.get((res.tenant, name))
                if entry is None:
                    continue
                entry[0] -= 1
                entry[1] = entry[1] or answered
                if entry[0] <= 0:
                    del self._calls[(res.tenant, name)]
                    if entry[2] and not entry[1]:  # made new, answered by none
                        self._release_when_done(res.tenant, name)

    def _release_when_done(self, tenant: str, name: str) -> None:
        """Release `name` once no pending lineage needs it (self._lock held)."""
        self._deferred.setdefault(tenant, set()).add(name)
        self._maybe_release(tenant, name)

    def produced(self, tenant: str, req, positions: dict[str, int]) -> None:
        """The kept names of a call that was answered ({name: its position in the
        answer}): `req` is their lineage until their copies are seen in the store."""
        with self._lock:
            self._lineage_done(self.lineage.note(tenant, Origin(req, positions),
                                                 list(positions)))

    def pending(self, tenant: str, name: str) -> bool:
        """Whether `name` is a kept result whose copy is not known to exist yet."""
        with self._lock:
            return self.lineage.origin(tenant, name) is not None

    def recover(self, tenant: str, names, recompute) -> str | None:
        """Kept tensors a worker found missing (their holder died before their copies
        were written), computed again from their lineage by `recompute(request, prefer)`
        (a ComputeResponse; one run per producing request, all on one worker if the pool
        allows): the address of the worker that holds them now, or None if any of them
        has no lineage (or came out under another name)."""
        with self._lock:
            origins = {d: self.lineage.origin(tenant, d) for d in names}
        if not origins or any(o is None for o in origins.values()):
            return None
        where, runs = None, {}
        for d, origin in origins.items():
            if id(origin) not in runs:
                log.warning("kept tensor %s of tenant %s lost its holder before its "
                            "durable copy was written: computing it again", d, tenant)
                runs[id(origin)] = recompute(origin.req, where)
                where = runs[id(origin)].worker or where
            msg = runs[id(origin)].results[origin.positions[d]]
            if msg.hash != d:
                log.warning("kept tensor %s computed again came out as %r: not used", d,
                            msg.hash)
                return None
        return where

    def _maybe_release(self, tenant: str, name: str) -> None:
        """A deferred release goes once no pending lineage reads the name and its own
        copy is not on its way (self._lock held)."""
        deferred = self._deferred.get(tenant)
        if not deferred or name not in deferred:
            return
        if self.lineage.needed(tenant, name) or self.lineage.origin(tenant, name):
            return
        deferred.discard(name)
        if not deferred:
            del self._deferred[tenant]
        self._released.setdefault(tenant, set()).add(name)
        self._active.add(tenant)

    def _lineage_done(self, freed) -> None:
        """Names no pending lineage reads any more (self._lock held)."""
        for tenant, name in freed:
            self._finish_skipped(tenant, name)
            self._maybe_release(tenant, name)

    def _finish_skipped(self, tenant: str, name: str) -> None:
        """A name whose holder skipped its copy (the client had released it: coalescing)
        keeps its lineage while a pending lineage reads it (recomputing that one needs
        it), then it goes as if its copy had landed: its release is made (self._lock
        held)."""
        if (tenant, name) not in self._skipped:
            return
        if self.lineage.origin(tenant, name) is None:  # dropped by the bound meanwhile
            self._skipped.discard((tenant, name))
        elif not self.lineage.needed(tenant, name):
            self._skipped.discard((tenant, name))
            self._landed(tenant, name)

    def _landed(self, tenant: str, name: str) -> None:
        """`name`'s copy exists: its lineage goes (self._lock held)."""
        self._lineage_done(self.lineage.done(tenant, name))
        self._maybe_release(tenant, name)

    @contextmanager
    def _tenant_lock(self, tenant: str):
        """Hold the tenant's settle lock; the lock goes when nobody holds or waits for it."""
        with self._lock:
            entry = self._tenant_locks.get(tenant)
            if entry is None:
                entry = self._tenant_locks[tenant] = [threading.Lock(), 0]
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._tenant_locks[tenant]

    def _settle(self, tenant: str, sizes: dict[str, int]):
        """Settle the tenant's releases and uncounted copies, and reserve `sizes` (its
        settle lock held): the Settled, or None with the store down (all of it waits)."""
        with self._lock:
            released = self._released.pop(tenant, set()) - set(sizes)
            forced = self._uncounted.pop(tenant, {})
        settled = self._breaker.call(
            "settle", lambda: self.kept.settle(tenant, released, sizes, self.quota,
                                               self.clock(), forced), None, tenant)
        if settled is None:
            with self._lock:
                if released:
                    self._released.setdefault(tenant, set()).update(released)
                if forced:
                    forced.update(self._uncounted.get(tenant, {}))
                    self._uncounted[tenant] = forced
            return None
        self._after(tenant, settled)
        return settled

    def _after(self, tenant: str, settled) -> None:
        """Delete the released copies (behind, in order) and note the tenant."""
        if settled.freed:
            freed = list(settled.freed)
            self.behind.later(lambda: self.kept.delete(tenant, freed), 0, "release")
        now = time.monotonic()
        with self._lock:  # settles of several calls run at once: the prune iterates it
            due = now - self._noted.get(tenant, -1e9) > NOTE_EVERY  # again: Redis restarts
            if due:
                if len(self._noted) >= 1024:  # forget those due again anyway
                    self._noted = {t: at for t, at in self._noted.items()
                                   if now - at <= NOTE_EVERY}
                self._noted[tenant] = now
        if due:
            self.behind.later(lambda: self.kept.note_tenant(tenant), 0, "tenant")

    # --- in the background -------------------------------------------------------------
    def check_landed(self) -> None:
        """Ask the store which pending names have their copies now (their holders wrote
        them): their lineage goes, and releases that waited for them are made."""
        with self._lock:
            pending = self.lineage.pending()
        for tenant, names in pending.items():
            landed = self._breaker.call("landed", lambda t=tenant, n=names:
                                        self.kept.landed(t, n), None, tenant)
            if landed is None:
                continue
            with self._lock:
                for d, copy in landed.items():
                    if copy:
                        self._landed(tenant, d)
                    else:
                        self._skipped.add((tenant, d))
                        self._finish_skipped(tenant, d)

    def settle_pending(self) -> None:
        """Settle the releases and last-seen times of tenants that called since the
        last time (those that kept something settled theirs already)."""
        with self._lock:
            active, self._active = self._active, set()
        for tenant in active:
            with self._tenant_lock(tenant):
                if self._settle(tenant, {}) is None:
                    with self._lock:  # the next sweep tries again what waits for it
                        if self._released.get(tenant) or self._uncounted.get(tenant):
                            self._active.add(tenant)

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
                    self.holders.forget(tenant, held)
            self.kept.delete(tenant, list(held))
            self.kept.drop_tenant(tenant)

    def sweep_once(self) -> None:
        self.check_landed()
        self.settle_pending()

    def _sweep(self) -> None:
        every = min(60.0, max(self.SETTLE_EVERY, self.idle / 10)) if self.idle > 0 else 0
        next_idle = time.monotonic() + every
        while not self._stop.wait(self.SETTLE_EVERY):
            try:
                self.sweep_once()
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
