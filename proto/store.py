"""Tensor stores: leaf bytes by content hash, in Redis (shared by gateway and workers) or
in this process (a single-process cluster or the embedded engine).

Values are TensorData messages (dtype, shape, raw bytes), never pickles. Redis caps one
value at 512 MB, so a large tensor is stored as one hash: its header in the field `header`
and its bytes in the fields `0`, `1`, ... (32 MiB each), written in one transaction. A
hash lives, expires and is evicted as one key, so a tensor is either whole or missing:
`missing()` (HasTensors) is one EXISTS per tensor and never reports present a tensor one
of whose chunks is gone. A missing tensor is sent again by the client.
redis-py is imported only when a Redis store is made, so the engine runs without it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from threading import Lock

from . import keys
from . import remotegrad_pb2 as pb

log = logging.getLogger("remotegrad.store")

CHUNK = 32 << 20  # bytes per Redis value for large tensors
MAX_CHUNKS = 1 << 12  # 128 GiB: a header read back announcing more is not ours
ITEM_OVERHEAD = 256  # bytes an in-process entry costs besides its data (message, key)


def _size(msg: pb.TensorData) -> int:
    """An entry's bytes: its data and the overhead. Not ByteSize(): upb encodes the whole
    message to count it (95 us for 200 KiB, 0.6 ms for 4 MiB); reading `data` copies it
    once (4.5 us for 200 KiB), and the copy is gone at once."""
    return len(msg.data) + ITEM_OVERHEAD


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
            self._bytes += _size(own)
            while self._bytes > self._max and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= _size(old)

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        with self._lock:
            return [d for d in digests if (tenant, d) not in self._items]

    def nbytes(self) -> int:
        """Bytes held (a worker's memory budget counts them: worker/budget.py)."""
        return self._bytes

    def shrink(self, to_bytes: int) -> None:
        """Drop least recently used entries until at most `to_bytes` are held."""
        with self._lock:
            while self._bytes > to_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= _size(old)


class RedisTensorStore:
    """Leaf tensors in Redis under rg:v2:tensor:{tenant}:{{hash}} (proto/keys.py), with a
    TTL: a string (the whole TensorData) up to CHUNK bytes, a hash of chunks above."""

    shared = True
    HEADER = b"header"  # the chunked hash's field holding the TensorData without its bytes

    def __init__(self, url: str, ttl: int = 3600) -> None:
        from .redis_client import connect
        self.redis = connect(url, socket_timeout=10, socket_connect_timeout=2)
        self.ttl = ttl

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        import redis
        key = keys.tensor_key(tenant, digest)
        try:
            raw = self.redis.get(key)
        except redis.ResponseError as e:
            if not str(e).startswith("WRONGTYPE"):
                raise
            return self._get_chunked(key, tenant, digest)  # raises if not a hash either
        if raw is None:
            return None
        msg = _parsed(raw, digest)
        if msg is None or _chunks(msg):
            # Damaged, or written by someone else: a missing tensor (the client sends it
            # again, which replaces it), not a failure of Redis.
            log.warning("tensor %s of tenant %s: the stored value is not a TensorData of "
                        "that name; dropped", digest, tenant)
            self.redis.delete(key)
            return None
        return msg

    def _get_chunked(self, key: str, tenant: str, digest: str) -> pb.TensorData | None:
        fields = self.redis.hgetall(key)
        msg = _parsed(fields.get(self.HEADER, b""), digest)
        n = _chunks(msg) if msg is not None and not msg.data else 0
        parts = [fields.get(str(i).encode()) for i in range(n if n <= MAX_CHUNKS else 0)]
        if not parts or len(fields) != n + 1 or any(p is None for p in parts):
            log.warning("tensor %s of tenant %s: the stored chunks do not make a TensorData "
                        "of that name; dropped", digest, tenant)
            self.redis.delete(key)
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
        # One transaction on one key: nobody sees the hash half written, and Redis
        # Cluster needs no more than the one slot.
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        for i in range(_chunks(msg)):
            pipe.hset(key, str(i), bytes(view[i * CHUNK:(i + 1) * CHUNK]))
        pipe.hset(key, self.HEADER, header.SerializeToString())
        pipe.expire(key, self.ttl)
        pipe.execute()

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        if not digests:
            return []
        names = [keys.tensor_key(tenant, d) for d in digests]  # all checked before any call
        # A tensor is one key, whole or gone (a chunked one is one hash): EXISTS is exact.
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(name)
        return [d for d, present in zip(digests, pipe.execute()) if not present]


def _parsed(raw: bytes, digest: str) -> pb.TensorData | None:
    """The TensorData a stored value holds, if it is one named `digest`."""
    try:
        msg = pb.TensorData.FromString(raw)
    except Exception:  # noqa: BLE001  (DecodeError, RecursionError: not a message)
        return None
    return msg if msg.hash == digest else None


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
    the caller: the call answers `fallback`, and the failure is logged and reported to
    `on_error(op)`.

    Only an outage (the service unreachable, or not answering in time) opens the breaker:
    the service is then left alone for a second before it is tried again. An error that one
    call's own input or data caused (a command Redis refuses, a value that does not parse)
    fails that call alone, and a name that is not one (keys.KeyNameError) is the caller's
    error, raised. The breaker opens per `scope` (a tenant): one tenant's calls can never
    stop the service for the others, at the cost of one failed try per tenant and second
    while it is really down."""

    RETRY_AFTER = 1.0
    MAX_SCOPES = 1024  # open scopes remembered at once (expired ones are dropped first)

    def __init__(self, what: str, on_error=lambda op: None) -> None:
        self.what, self._on_error = what, on_error
        self._down_until: dict[str, float] = {}
        self._lock = Lock()

    def call(self, op: str, fn, fallback, scope: str = ""):
        now = time.monotonic()
        if self._down_until and self._down_until.get(scope, 0.0) > now:
            return fallback
        try:
            return fn()
        except keys.KeyNameError:
            raise
        except Exception as e:  # noqa: BLE001  (redis.RedisError, OSError, timeouts, ...)
            self._on_error(op)
            if not is_outage(e):
                log.warning("%s %s failed (this call only): %s: %s", self.what, op,
                            type(e).__name__, e)
                return fallback
            self._open(scope, now)
            log.warning("%s %s failed, continuing without it for %gs%s: %s", self.what, op,
                        self.RETRY_AFTER, f" (tenant {scope})" if scope else "", e)
            return fallback

    def _open(self, scope: str, now: float) -> None:
        with self._lock:  # readers only .get() the dict, which is safe meanwhile
            down = dict(self._down_until)
            if len(down) >= self.MAX_SCOPES:
                down = {k: t for k, t in down.items() if t > now}
                while len(down) >= self.MAX_SCOPES:  # the oldest pauses end early
                    del down[next(iter(down))]
            down.pop(scope, None)  # re-inserted last: insertion order is age
            down[scope] = now + self.RETRY_AFTER
            self._down_until = down


def is_outage(err: BaseException) -> bool:
    """Whether an error says the service is unreachable or too slow, rather than that one
    command was refused."""
    if isinstance(err, OSError):  # ConnectionError, TimeoutError, socket errors
        return True
    redis = sys.modules.get("redis")  # imported only where a Redis store is made
    return redis is not None and isinstance(err, (redis.ConnectionError, redis.TimeoutError))


class GuardedStore:
    """A store whose failures degrade: `get` answers None, `put` False, `missing` None
    (unknown). A tenant's failures open the breaker for that tenant only."""

    def __init__(self, store, on_error=lambda op: None) -> None:
        self.inner, self.shared = store, store.shared
        self._breaker = Breaker("tensor store", on_error)

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        return self._breaker.call("get", lambda: self.inner.get(tenant, digest), None, tenant)

    def put(self, tenant: str, msg: pb.TensorData) -> bool:
        return self._breaker.call("put", lambda: self.inner.put(tenant, msg) or True, False,
                                  tenant)

    def missing(self, tenant: str, digests: list[str]) -> list[str] | None:
        return self._breaker.call("missing", lambda: self.inner.missing(tenant, digests),
                                  None, tenant)


class TieredStore:
    """A worker's view of the shared store: recently used tensors stay in this process
    (an LRU bounded in bytes), so repeated calls over the same parameters skip Redis.

    The LRU holds only bytes whose content hash is their name: what comes from the shared
    store is checked before it is kept or used (a value that does not match, planted or
    damaged, is missing: the client sends it again), and what `put` is given was checked by
    the caller (the worker service verifies every inline tensor). So it can never serve
    bytes that differ from what the name stands for, whichever version came first."""

    def __init__(self, shared, local_bytes: int) -> None:
        self.inner, self.shared = shared, shared.shared
        self.local = MemoryTensorStore(local_bytes)

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        msg = self.local.get(tenant, digest)
        if msg is None:
            msg = self.inner.get(tenant, digest)
            if msg is None:
                return None
            if not content_matches(msg, digest):
                log.warning("tensor %s of tenant %s: the shared store's bytes do not hash "
                            "to their name; not used", digest, tenant)
                return None
            self.local.put(tenant, msg)
        return msg

    def put(self, tenant: str, msg: pb.TensorData):
        # Only here: the gateway already staged the leaf in the shared store.
        self.local.put(tenant, msg)
        return True

    def missing(self, tenant: str, digests: list[str]):
        return self.inner.missing(tenant, digests)


def content_matches(msg: pb.TensorData, digest: str) -> bool:
    """Whether a tensor's dtype, shape and bytes hash to `digest` (and it says so)."""
    from .nodes import tensor_hash
    return msg.hash == digest and tensor_hash(msg.dtype, tuple(msg.shape), msg.data) == digest
