"""Tensor stores: leaf bytes by content hash, in Redis (shared by gateway and workers) or
in this process (a single-process cluster or the embedded engine).

Values are serialized TensorData messages — dtype, shape, raw bytes — never pickles.
redis-py is imported only when a Redis store is made, so the engine runs without it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from threading import Lock

from . import keys
from . import remotegrad_pb2 as pb

log = logging.getLogger("remotegrad.store")


class MemoryTensorStore:
    """An LRU of TensorData messages bounded in bytes."""

    shared = False

    def __init__(self, max_bytes: int = 4 << 30) -> None:
        self._items: OrderedDict[str, pb.TensorData] = OrderedDict()
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
            self._items[k] = msg
            self._bytes += len(msg.data)
            while self._bytes > self._max and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old.data)

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        with self._lock:
            return [d for d in digests if (tenant, d) not in self._items]


class RedisTensorStore:
    """Leaf tensors in Redis under rg:v1:{tenant}:tensor:{hash}, with a TTL."""

    shared = True

    def __init__(self, url: str, ttl: int = 3600) -> None:
        import redis
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.ttl = ttl

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        raw = self.redis.get(keys.tensor_key(tenant, digest))
        if raw is None:
            return None
        return pb.TensorData.FromString(raw)

    def put(self, tenant: str, msg: pb.TensorData) -> None:
        self.redis.set(keys.tensor_key(tenant, msg.hash), msg.SerializeToString(), ex=self.ttl)

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        if not digests:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for d in digests:
            pipe.exists(keys.tensor_key(tenant, d))
        return [d for d, present in zip(digests, pipe.execute()) if not present]
