"""The result cache: serialized ComputeResponses under a graph's fingerprint.

In Redis (shared by gateways, with a TTL and Redis's own LRU eviction) or, without Redis,
an in-process LRU bounded in bytes. A Redis that stops answering must not fail a call:
the cache then misses (logged, counted) and is tried again after a short pause.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from threading import Lock

from remotegrad.proto import keys

from . import metrics

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
    RETRY_AFTER = 1.0  # seconds to stay off a Redis that failed

    def __init__(self, client, ttl: int) -> None:
        self.redis, self.ttl = client, ttl
        self._down_until = 0.0

    def _call(self, what: str, fn):
        import redis
        if time.monotonic() < self._down_until:
            return None
        try:
            return fn()
        except redis.RedisError as e:
            self._down_until = time.monotonic() + self.RETRY_AFTER
            metrics.REDIS_ERRORS.labels(what).inc()
            log.warning("result cache %s failed, serving without it: %s", what, e)
            return None

    def get(self, tenant: str, fp: str) -> bytes | None:
        return self._call("get", lambda: self.redis.get(keys.result_key(tenant, fp)))

    def put(self, tenant: str, fp: str, raw: bytes) -> None:
        self._call("put", lambda: self.redis.set(keys.result_key(tenant, fp), raw, ex=self.ttl))
