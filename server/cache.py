"""The result cache: serialized ComputeResponses under a graph's fingerprint.

In Redis (shared by gateways, with a TTL and Redis's own LRU eviction) or, without Redis,
an in-process LRU bounded in bytes. A Redis that stops answering must not fail a call:
the cache then misses (logged, counted) and is tried again after a short pause (per tenant:
one tenant's failures never pause it for the others, proto/store.py Breaker).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from threading import Lock

from remotegrad.proto import keys, metrics
from remotegrad.proto.store import Breaker

log = logging.getLogger("remotegrad.cache")


class MemoryResultCache:
    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes, self._max, self._lock = 0, max_bytes, Lock()

    def get(self, tenant: str, fp: str) -> bytes | None:
        with self._lock:
            raw = self._items.get(keys.result_key(tenant, fp))
            if raw is not None:
                self._items.move_to_end(keys.result_key(tenant, fp))
            return raw

    def put(self, tenant: str, fp: str, raw: bytes) -> None:
        if len(raw) > self._max:
            return
        with self._lock:
            k = keys.result_key(tenant, fp)
            old = self._items.pop(k, None)
            self._bytes += len(raw) - (len(old) if old else 0)
            self._items[k] = raw
            while self._bytes > self._max:
                _, v = self._items.popitem(last=False)
                self._bytes -= len(v)


class RedisResultCache:
    def __init__(self, client, ttl: int) -> None:
        self.redis, self.ttl = client, ttl
        self._breaker = Breaker("result cache",
                                lambda op: metrics.REDIS_ERRORS.labels(f"cache_{op}").inc())

    def get(self, tenant: str, fp: str) -> bytes | None:
        return self._breaker.call(
            "get", lambda: self.redis.get(keys.result_key(tenant, fp)), None, tenant)

    def put(self, tenant: str, fp: str, raw: bytes) -> None:
        self._breaker.call(
            "put", lambda: self.redis.set(keys.result_key(tenant, fp), raw, ex=self.ttl), None,
            tenant)
