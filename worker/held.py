"""Kept results in the memory of the worker that computed them, and their durable copies.

A call that keeps results (a training step's parameters and optimiser state) names them
by provenance (ComputeRequest.keep_as, proto/keys.py kept_name). The worker holds each one
here under its name, answers it by reference and writes its durable copy behind
(proto/kept.py KeptCopies, from proto/write_behind.py's thread): nothing hashes, sends or
copies the bytes on the call's path, and the gateway never receives them.

A held result is pinned until its copy is written: until then this worker (and the
gateway's lineage of it, server/lineage.py) is all there is. A write that fails (Redis
down, or refusing the copies' keys) is tried again, 1, 2, 4 ... 30 s later, with the
tenant's other failed ones: a held one until it lands, a released one (mostly marked
skipped instead, WorkerStore._write: the gateway waits for the copy or the mark before
it makes a release) for RELEASED_TRIES tries; a breaker stops the tries while Redis is
down. Keeping a name again that is still pinned queues its copy again at once. Once
written it is an ordinary cache entry, dropped first when memory runs short
(worker/budget.py shrinks it) or past `max_bytes`, and read back from its copy when
needed again. A name the client released (ComputeRequest.release, seen on a call this
worker runs) goes at once.

Held results are the arrays the computation made (read-only), not messages: no copy
into a message to hold them, none out of one to compute on them again, and their copies
are written from the arrays' own memory.

Kept names are not content hashes, so their bytes are never checked against them: they
come only from this worker's own computation or from a copy some worker wrote (the store
keys they live in are not the tensor store's, which clients write through the gateway).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import numpy as np
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.store import Breaker

log = logging.getLogger("remotegrad.worker")

ENTRY_OVERHEAD = 256  # bytes an entry costs besides its data


class Held:
    """(tenant, name) -> a read-only array; LRU among the written ones."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._pinned: set[tuple[str, str]] = set()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, tenant: str, name: str) -> np.ndarray | None:
        with self._lock:
            value = self._items.get((tenant, name))
            if value is not None:
                self._items.move_to_end((tenant, name))
            return value

    def keep(self, tenant: str, name: str, value: np.ndarray, pinned: bool) -> bool:
        """Hold `value` (not copied: the caller hands it over). Whether its copy is to be
        written: False if held already, unless held still pinned (its copy not written:
        a write that failed is queued again rather than left to its next try)."""
        key = (tenant, name)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return pinned and key in self._pinned
            self._items[key] = value
            self._bytes += _size(value)
            if pinned:
                self._pinned.add(key)
            self._trim(self.max_bytes)
            return True

    def holds(self, tenant: str, name: str) -> bool:
        return (tenant, name) in self._items

    def is_written(self, tenant: str, name: str) -> bool:
        """Held and its copy written (released ones are not known: neither)."""
        key = (tenant, name)
        return key in self._items and key not in self._pinned

    def written(self, tenant: str, name: str) -> None:
        with self._lock:
            self._pinned.discard((tenant, name))

    def release(self, tenant: str, names) -> None:
        with self._lock:
            for name in names:
                key = (tenant, name)
                value = self._items.pop(key, None)
                if value is not None:
                    self._bytes -= _size(value)
                self._pinned.discard(key)

    def nbytes(self) -> int:
        return self._bytes

    def shrink(self, to_bytes: int) -> None:
        with self._lock:
            self._trim(to_bytes)

    def _trim(self, to_bytes: int) -> None:
        """Drop written entries, least recently used first (self._lock held)."""
        if self._bytes <= to_bytes:
            return
        for key in [k for k in self._items if k not in self._pinned]:
            self._bytes -= _size(self._items.pop(key))
            if self._bytes <= to_bytes:
                return


class WorkerStore:
    """What a worker reads by name: its held results, then the leaves' store (an LRU over
    the shared tensor store, worker/service.py), then the durable copies of kept results
    (read into `held` as written entries). Writes of leaves go to the leaves' store; kept
    results go to `keep`, never to the TTL'd tensor store."""

    RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds before a failed copy is written again
    # Released names are tried this many times (about 5 minutes), held ones until they land.
    RELEASED_TRIES = 14
    MAX_SKIPPED = 4  # calls' copies skipped in a row (each a step of a recomputation)

    def __init__(self, leaves, held: Held, copies=None, behind=None) -> None:
        self.leaves, self.held, self.copies, self.behind = leaves, held, copies, behind
        self.shared = leaves.shared
        self._breaker = Breaker("kept copies")
        self._lock = threading.Lock()
        # tenant -> copies to try again: {name: its array, or the bytes (an int) of a
        # released one, whose copy is only to be marked skipped: its array is let go}
        self._failed: dict[str, dict[str, np.ndarray | int]] = {}
        self._tries: dict[str, int] = {}  # tenant -> tries again that failed, in a row
        self._skips: dict[str, int] = {}  # tenant -> writes that were all skipped, in a row

    def array(self, tenant: str, name: str) -> np.ndarray | None:
        """The value named `name` (what a computation reads), or None."""
        value = self.held.get(tenant, name)
        if value is not None:
            return value
        msg = self.leaves.get(tenant, name)
        if msg is not None:
            return codec.decode_array(msg)
        if self.copies is None:
            return None
        msg = self._breaker.call("get", lambda: self.copies.get(tenant, name), None, tenant)
        if msg is None:
            return None
        value = codec.decode_array(msg)
        self.held.keep(tenant, name, value, pinned=False)  # read once: held from now on
        return value

    def get(self, tenant: str, name: str) -> pb.TensorData | None:
        value = self.held.get(tenant, name)
        if value is not None:
            return codec.encode_array(value, name)
        return self.leaves.get(tenant, name)

    def put(self, tenant: str, msg: pb.TensorData):
        return self.leaves.put(tenant, msg)

    def share(self, tenant: str, msg: pb.TensorData) -> bool:
        """Write a hashed result into the shared tensor store itself (not this worker's
        LRU: the gateway answers it by hash and a client fetches it from there); False
        without a shared store or when the write failed (worker/by_reference.py)."""
        inner = getattr(self.leaves, "inner", None)  # TieredStore's, a GuardedStore
        return bool(self.shared and inner is not None and inner.put(tenant, msg))

    def keep(self, tenant: str, values: dict) -> dict:
        """Hold one call's kept results ({name: array}) and write their copies behind,
        together; the references that answer them ({name: TensorData with name, dtype,
        shape; no bytes})."""
        refs, new = {}, []
        durable = self.copies is not None and self.behind is not None
        for value in values.values():  # all checked before any is held (and pinned)
            if np.asarray(value).dtype.name not in codec.DTYPES:
                raise codec.OpError(f"dtype {np.asarray(value).dtype.name} cannot be kept")
        for name, value in values.items():
            value = codec.contiguous(np.asarray(value))
            if not value.flags.owndata:  # a view would hold its base (uncounted) alive
                value = value.copy()
            refs[name] = pb.TensorData(dtype=value.dtype.name, shape=value.shape, hash=name)
            value.flags.writeable = False  # shared by the calls that read it from now on
            if self.held.keep(tenant, name, value, pinned=durable):
                new.append((name, value))
        if durable and new:
            self.behind.later(lambda: self._write(tenant, new),
                              sum(v.nbytes for _, v in new), new[0][0])
        return refs

    def release(self, tenant: str, names) -> None:
        if names:
            self.held.release(tenant, names)
            with self._lock:
                self._let_go(tenant, names)

    def _let_go(self, tenant: str, names) -> None:
        """Released names' failed copies keep no bytes (self._lock held): their retry
        marks them skipped (the gateway's lineage covers them). Kept, a Redis outage
        during training kept every step's released parameters, counted nowhere."""
        failed = self._failed.get(tenant)
        for name in names if failed else ():
            value = failed.get(name)
            if isinstance(value, np.ndarray):
                failed[name] = value.nbytes

    def _write(self, tenant: str, new: list) -> None:
        """Write the copies of `new` ([(name, array)]) not written since, in one round
        trip; failed, they are tried again later. A name the client released before
        its write began is marked skipped instead (coalescing: a training step's
        parameters are released by the next step), which tells the gateway to drop
        its lineage and make its release, once no pending lineage reads it: at most
        MAX_SKIPPED calls' in a row, so that a recomputation from lineage stays short
        (one released after its write failed has no bytes left to write: skipped)."""
        todo = [(name, v) for name, v in new if not self.held.is_written(tenant, name)]
        if not todo:
            return
        with self._lock:
            run = self._skips.get(tenant, 0)
        skip = [name for name, v in todo if isinstance(v, int) or (
            run < self.MAX_SKIPPED and not self.held.holds(tenant, name))]
        if not self._breaker.call("write", lambda: self._write_now(tenant, todo, skip),
                                  False, tenant):
            self._again(tenant, todo)

    def _write_now(self, tenant: str, todo: list, skip: list) -> bool:
        # From the arrays' own memory: nothing is copied into a message.
        gone = set(skip)
        write = [(name, v) for name, v in todo if name not in gone]
        self.copies.write_many(tenant, [
            (name, v.dtype.name, v.shape, memoryview(v.reshape(-1).view(np.uint8)))
            for name, v in write], skip)
        KEPT_WRITTEN.inc(sum(v.nbytes for _, v in write))
        if skip:
            KEPT_SKIPPED.inc(sum(_nbytes(v) for name, v in todo if name in gone))
        for name, _ in write:
            self.held.written(tenant, name)
        with self._lock:
            self._tries.pop(tenant, None)
            if write or not skip:
                self._skips.pop(tenant, None)
            else:
                self._skips[tenant] = self._skips.get(tenant, 0) + 1
        return True

    def _again(self, tenant: str, todo: list) -> None:
        """Try `todo` again later, with the tenant's other failed copies: one try per
        tenant at a time, 1, 2, 4 ... 30 s after a failure (the entries stay pinned)."""
        with self._lock:
            due = tenant not in self._failed
            self._failed.setdefault(tenant, {}).update(todo)
            self._let_go(tenant, [n for n, _ in todo if not self.held.holds(tenant, n)])
            if due:  # a try again (the other calls' failures meanwhile join it)
                tries = self._tries[tenant] = self._tries.get(tenant, 0) + 1
        if due:
            delay = min(self.RETRY_MAX, self.RETRY_FIRST * 2 ** min(tries - 1, 16))
            log.warning("durable copies of %d kept results of tenant %s not written "
                        "(%s ...): trying again in %gs", len(todo), tenant, todo[0][0], delay)
            self.behind.after(delay, lambda: self._retry(tenant), "kept copies again")

    def _retry(self, tenant: str) -> None:
        with self._lock:
            todo = list(self._failed.pop(tenant, {}).items())
            if self._tries.get(tenant, 0) >= self.RELEASED_TRIES:  # minutes of failures
                kept = [(n, v) for n, v in todo if self.held.holds(tenant, n)]
                if len(kept) < len(todo):
                    log.warning("durable copies of %d released kept results of tenant %s "
                                "given up after %d tries", len(todo) - len(kept), tenant,
                                self.RELEASED_TRIES)
                todo = kept
        for i, (name, v) in enumerate(todo):  # let go, then kept again: held now
            got = self.held.get(tenant, name) if isinstance(v, int) else None
            if got is not None:
                todo[i] = (name, got)
        self._write(tenant, todo)
        with self._lock:
            if tenant not in self._failed:  # written, or nothing left to write
                self._tries.pop(tenant, None)


def _size(value: np.ndarray) -> int:
    return value.nbytes + ENTRY_OVERHEAD


def _nbytes(value: np.ndarray | int) -> int:
    return value if isinstance(value, int) else value.nbytes


def _counter(name: str = "remotegrad_kept_bytes_written_total",
             doc: str = "bytes of kept results' durable copies this worker wrote"):
    from prometheus_client import Counter
    return Counter(name, doc)


KEPT_WRITTEN = _counter()
KEPT_SKIPPED = _counter("remotegrad_kept_bytes_skipped_total",
                        "bytes of kept results' durable copies this worker did not write: "
                        "the client had released them before their write began")
