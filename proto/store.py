"""Tensor stores: leaf bytes by content hash, in Redis (shared by gateway and workers) or
in this process (a single-process cluster or the embedded engine).

Values are TensorData messages (dtype, shape, raw bytes), never pickles. Redis caps one
value at 512 MB, so a large tensor is stored as a header key plus chunk keys; a tensor any
of whose keys was evicted counts as missing (and is sent again by the client).
redis-py is imported only when a Redis store is made, so the engine runs without it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from threading import Lock

from . import keys
from . import remotegrad_pb2 as pb

log = logging.getLogger("remotegrad.store")

CHUNK = 32 << 20  # bytes per Redis value for large tensors
ITEM_OVERHEAD = 256  # bytes an in-process entry costs besides its data (message, key)


class MemoryTensorStore:
    """An LRU of TensorData messages bounded in bytes."""

    shared = False

    def __init__(self, max_bytes: int = 4 << 30) -> None:
        self._items: OrderedDict[tuple[str, str], pb.TensorData] = OrderedDict()
        self._bytes, self._max, self._lock = 0, max_bytes, Lock()

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        with self._lock:
            msg = self._items.get((tenant, digest))
            if msg is not None:
                self._items.move_to_end((tenant, digest))
            return msg

    def put(self, tenant: str, msg: pb.TensorData) -> None:
        with self._lock:
            k = (tenant, msg.hash)
            if k in self._items:
                self._items.move_to_end(k)
                return
            # A copy: the message may be part of a whole request, which it would keep
            # alive (protobuf sub-messages share their parent's memory), all of it
            # unaccounted for.
            own = pb.TensorData()
            own.CopyFrom(msg)
            self._items[k] = own
            self._bytes += len(own.data) + ITEM_OVERHEAD
            while self._bytes > self._max and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old.data) + ITEM_OVERHEAD

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        with self._lock:
            return [d for d in digests if (tenant, d) not in self._items]


class RedisTensorStore:
    """Leaf tensors in Redis under rg:v1:{tenant}:tensor:{hash}, with a TTL."""

    shared = True

    def __init__(self, url: str, ttl: int = 3600) -> None:
        import redis
        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=2)
        self.ttl = ttl

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        key = keys.tensor_key(tenant, digest)
        raw = self.redis.get(key)
        if raw is None:
            return None
        msg = pb.TensorData.FromString(raw)
        n = _chunks(msg)
        if n:
            parts = self.redis.mget([f"{key}:{i}" for i in range(n)])
            if any(p is None for p in parts):
                return None
            msg.data = b"".join(parts)
        return msg

    def put(self, tenant: str, msg: pb.TensorData) -> None:
        key = keys.tensor_key(tenant, msg.hash)
        if len(msg.data) <= CHUNK:
            self.redis.set(key, msg.SerializeToString(), ex=self.ttl)
            return
        header = pb.TensorData(dtype=msg.dtype, shape=msg.shape, hash=msg.hash)
        view = memoryview(msg.data)
        pipe = self.redis.pipeline(transaction=False)
        for i in range(_chunks(msg)):
            pipe.set(f"{key}:{i}", bytes(view[i * CHUNK:(i + 1) * CHUNK]), ex=self.ttl)
        pipe.set(key, header.SerializeToString(), ex=self.ttl)  # last: complete when visible
        pipe.execute()

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        if not digests:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for d in digests:
            pipe.exists(keys.tensor_key(tenant, d))
        return [d for d, present in zip(digests, pipe.execute()) if not present]


def _chunks(msg: pb.TensorData) -> int:
    """How many chunk keys hold a tensor's bytes (0: they are inline in the header)."""
    from .catalog import ITEMSIZE
    if msg.data:
        nbytes = len(msg.data)
    else:
        nbytes = ITEMSIZE.get(msg.dtype, 1)
        for s in msg.shape:
            nbytes *= s
    return 0 if nbytes <= CHUNK else -(-nbytes // CHUNK)


class Breaker:
    """Runs calls to a shared service (Redis) so that a failure degrades instead of failing
    the caller: the call answers `fallback`, the failure is logged and reported to
    `on_error(op)`, and the service is left alone for a second before it is tried again."""

    RETRY_AFTER = 1.0

    def __init__(self, what: str, on_error=lambda op: None) -> None:
        self.what, self._on_error, self._down_until = what, on_error, 0.0

    def call(self, op: str, fn, fallback):
        import time
        if time.monotonic() < self._down_until:
            return fallback
        try:
            return fn()
        except Exception as e:  # noqa: BLE001  (redis.RedisError, OSError, timeouts)
            self._down_until = time.monotonic() + self.RETRY_AFTER
            self._on_error(op)
            log.warning("%s %s failed, continuing without it: %s", self.what, op, e)
            return fallback


class GuardedStore:
    """A store whose failures degrade: `get` answers None, `put` False, `missing` None
    (unknown)."""

    def __init__(self, store, on_error=lambda op: None) -> None:
        self.inner, self.shared = store, store.shared
        self._breaker = Breaker("tensor store", on_error)

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        return self._breaker.call("get", lambda: self.inner.get(tenant, digest), None)

    def put(self, tenant: str, msg: pb.TensorData) -> bool:
        return self._breaker.call("put", lambda: self.inner.put(tenant, msg) or True, False)

    def missing(self, tenant: str, digests: list[str]) -> list[str] | None:
        return self._breaker.call("missing", lambda: self.inner.missing(tenant, digests), None)


class TieredStore:
    """A worker's view of the shared store: recently used tensors stay in this process
    (an LRU bounded in bytes), so repeated calls over the same parameters skip Redis."""

    def __init__(self, shared, local_bytes: int) -> None:
        self.inner, self.shared = shared, shared.shared
        self.local = MemoryTensorStore(local_bytes)

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        msg = self.local.get(tenant, digest)
        if msg is None:
            msg = self.inner.get(tenant, digest)
            if msg is not None:
                self.local.put(tenant, msg)
        return msg

    def put(self, tenant: str, msg: pb.TensorData):
        # Only here: the gateway already staged the leaf in the shared store.
        self.local.put(tenant, msg)
        return True

    def missing(self, tenant: str, digests: list[str]):
        return self.inner.missing(tenant, digests)

