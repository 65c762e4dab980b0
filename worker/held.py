"""Kept results in the memory of the worker that computed them, and their durable copies.

A call that keeps results (a training step's parameters and optimiser state) names them
by provenance (ComputeRequest.keep_as, proto/keys.py kept_name). The worker holds each one
here under its name, answers it by reference and writes its durable copy behind
(proto/kept.py KeptCopies, from proto/write_behind.py's thread): nothing hashes, sends or
copies the bytes on the call's path, and the gateway never receives them.

A held result is pinned until its copy is written: until then this worker (and the
gateway's lineage of it, server/lineage.py) is all there is. Once written it is an
ordinary cache entry, dropped first when memory runs short (worker/budget.py shrinks it)
or past `max_bytes`, and read back from its copy when needed again. A name the client
released (ComputeRequest.release, seen on a call this worker runs) goes at once.

Kept names are not content hashes, so their bytes are never checked against them: they
come only from this worker's own computation or from a copy some worker wrote (the store
keys they live in are not the tensor store's, which clients write through the gateway).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.store import Breaker

log = logging.getLogger("remotegrad.worker")

ENTRY_OVERHEAD = 256  # bytes an entry costs besides its data


class Held:
    """name -> TensorData (with bytes) per tenant; LRU among the written ones."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], pb.TensorData] = OrderedDict()
        self._pinned: set[tuple[str, str]] = set()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, tenant: str, name: str) -> pb.TensorData | None:
        with self._lock:
            msg = self._items.get((tenant, name))
            if msg is not None:
                self._items.move_to_end((tenant, name))
            return msg

    def keep(self, tenant: str, msg: pb.TensorData, pinned: bool) -> bool:
        """Hold `msg` (not copied: the caller hands it over); False if held already."""
        key = (tenant, msg.hash)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return False
            self._items[key] = msg
            self._bytes += _size(msg)
            if pinned:
                self._pinned.add(key)
            self._trim(self.max_bytes)
            return True

    def written(self, tenant: str, name: str) -> None:
        with self._lock:
            self._pinned.discard((tenant, name))

    def release(self, tenant: str, names) -> None:
        with self._lock:
            for name in names:
                key = (tenant, name)
                msg = self._items.pop(key, None)
                if msg is not None:
                    self._bytes -= _size(msg)
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

    def __init__(self, leaves, held: Held, copies=None, behind=None) -> None:
        self.leaves, self.held, self.copies, self.behind = leaves, held, copies, behind
        self.shared = leaves.shared
        self._breaker = Breaker("kept copies")

    def get(self, tenant: str, name: str) -> pb.TensorData | None:
        msg = self.held.get(tenant, name)
        if msg is None:
            msg = self.leaves.get(tenant, name)
        if msg is None and self.copies is not None:
            msg = self._breaker.call("get", lambda: self.copies.get(tenant, name), None,
                                     tenant)
            if msg is not None:
                self.held.keep(tenant, msg, pinned=False)
        return msg

    def put(self, tenant: str, msg: pb.TensorData):
        return self.leaves.put(tenant, msg)

    def missing(self, tenant: str, names: list[str]):
        return [d for d in self.leaves.missing(tenant, names) or []
                if self.held.get(tenant, d) is None]

    def keep(self, tenant: str, msg: pb.TensorData) -> None:
        """Hold a kept result under its name (msg.hash) and write its copy behind."""
        durable = self.copies is not None and self.behind is not None
        if self.held.keep(tenant, msg, pinned=durable) and durable:
            self.behind.later(lambda: self._write(tenant, msg), msg.ByteSize(), msg.hash)

    def release(self, tenant: str, names) -> None:
        if names:
            self.held.release(tenant, names)

    def _write(self, tenant: str, msg: pb.TensorData) -> None:
        self.copies.write(tenant, msg)  # a failure is logged: the entry stays pinned
        KEPT_WRITTEN.inc(msg.ByteSize())
        self.held.written(tenant, msg.hash)


def _size(msg: pb.TensorData) -> int:
    return msg.ByteSize() + ENTRY_OVERHEAD


def _counter():
    from prometheus_client import Counter
    return Counter("remotegrad_kept_bytes_written_total",
                   "bytes of kept results' durable copies this worker wrote")


KEPT_WRITTEN = _counter()
