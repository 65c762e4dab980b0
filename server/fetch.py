"""FetchTensor without holding the tensor: chunks go from the store to the client as they
are read, so a fetch costs the gateway one stored chunk (proto/store.py's CHUNK, 32 MiB)
and one message (STREAM_CHUNK, 4 MiB) at a time, whatever the tensor's size, not the
tensor several times over (the joined value, the message holding it, the list of its
messages).

In Redis a tensor up to CHUNK bytes is one string (the whole TensorData); a larger one is
one hash, its header in the field `header` and its bytes in the fields `0`, `1`, ...
(proto/store.py); a kept tensor's durable copy is such a hash too (proto/kept.py), read
when the store's own key is gone. An in-process store already holds the message: its
chunks are slices of it. In Redis every field is checked to be there at its full length
before the first byte goes out: a tensor that is not whole is missing
(FAILED_PRECONDITION: the SDK sends it again, or recomputes the result), not a stream
that breaks halfway. Should the key still go (evicted, expired) under the stream, the
stream ends with the same status; the SDK checks the content hash at the end either way.

What all fetches hold at once is bounded too (IN_FLIGHT, --fetch-bytes-in-flight): a
fetch takes its share before it reads a stored chunk (a whole small tensor: twice its
size, the value and the copy it is sent from) and gives it back once that chunk's last
message is sent, so 16 open fetches hold at most that many bytes of tensor, not 16 chunks,
and one tenant at most half of it. A fetch that finds no room waits for it, first come
first served (others' clients read on, or are cancelled after --stream-idle-timeout), and
is refused RESOURCE_EXHAUSTED after the idle timeout and WAIT_MARGIN.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from remotegrad.proto import codec, keys
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.catalog import ITEMSIZE
from remotegrad.proto.errors import MissingTensorError
from remotegrad.proto.store import CHUNK, MAX_CHUNKS, RedisTensorStore

log = logging.getLogger("remotegrad.gateway")

# The defaults; a gateway sets IN_FLIGHT from --fetch-bytes-in-flight, and its wait from
# --stream-idle-timeout + WAIT_MARGIN: by then a holder whose client stopped reading is gone.
FETCH_BYTES = 4 * CHUNK  # 128 MiB of tensor held by all fetches of a gateway at once
WAIT_MARGIN = 5.0
FETCH_WAIT = 30.0 + WAIT_MARGIN  # seconds a fetch waits for room


class FetchBusyError(codec.TooLargeError):
    """No room for a fetch's bytes in time (RESOURCE_EXHAUSTED)."""


class InFlight:
    """Bytes held by the fetches running now: at most `limit` in all and half of it per
    tenant, so that one tenant's stalled fetches leave room for the others' (one share is
    cut to the tenant's half: a tensor chunk always fits alone)."""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit, self.wait, self.used = limit, wait, 0
        self.per_tenant = limit // 2
        self._tenants: dict[str, int] = {}
        self._queue: list[tuple] = []  # waiting shares, first come first
        self._cond = threading.Condition()

    def _room(self, tenant: str, n: int) -> bool:
        return (self.used + n <= self.limit
                and self._tenants.get(tenant, 0) + n <= self.per_tenant)

    def _turn(self, me: tuple) -> bool:
        """Whether `me` is the earliest waiting share that fits: a fetch that gave a chunk
        back and asks again queues behind those already waiting (none starves)."""
        first = next((w for w in self._queue if self._room(*w[:2])), None)
        return first is me

    @contextlib.contextmanager
    def hold(self, tenant: str, n: int):
        n = min(max(0, n), self.per_tenant)
        if not n:
            yield
            return
        end = time.monotonic() + self.wait
        me = (tenant, n, object())  # unique: two equal shares are two waiters
        with self._cond:
            self._queue.append(me)
            try:
                while not self._turn(me):
                    left = end - time.monotonic()
                    if left <= 0:
                        raise self._busy(n)
                    self._cond.wait(left)
            finally:
                self._queue.remove(me)
                self._cond.notify_all()  # the next waiter may fit now
            self.used += n
            self._tenants[tenant] = self._tenants.get(tenant, 0) + n
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                left_held = self._tenants[tenant] - n
                if left_held:
                    self._tenants[tenant] = left_held
                else:
                    del self._tenants[tenant]
                self._cond.notify_all()

    def _busy(self, n: int) -> FetchBusyError:
        return FetchBusyError(
            f"the gateway's fetches hold {self.used >> 20} MiB of its bound on tensor bytes "
            f"in flight ({self.limit >> 20} MiB, half of it per tenant); this one needs "
            f"{n >> 20} MiB more (waited {self.wait:.0f}s): try again later")


IN_FLIGHT = InFlight(FETCH_BYTES, FETCH_WAIT)

# glibc raises its mmap threshold as large blocks are freed (up to 32 MiB), after which a
# fetch's 32 MiB chunks (and redis-py's buffers for reading them) come from per-thread
# heaps that keep them once freed: 16 concurrent fetches of 256 MiB left a gateway at
# +626-694 MiB of RSS when they were done (peak +835-862). Fixed at 8 MiB, such blocks are
# mapped and given back when freed, and the heaps trimmed: +3-35 MiB after (peak
# +411-420), at about the same speed (tests/security/probe_fetch_rss.py; at 1 MiB the
# 4 MiB messages were mapped too, and the fetches took 45% longer).
MMAP_THRESHOLD = 8 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def give_back_large_buffers() -> bool:
    """Have glibc map blocks of MMAP_THRESHOLD bytes or more (given back to the system when
    freed); False where the C library is not glibc."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def chunks(store, tenant: str, digest: str, size: int = codec.STREAM_CHUNK):
    """The TensorChunks of `digest`, read as they are sent. `store`: the gateway's (a
    GuardedStore over a Redis store, with kept tensors' durable copies beside it
    (proto/kept.py), or over an in-process one)."""
    inner = getattr(store, "inner", store)
    client = getattr(inner, "redis", None)
    if client is not None:
        names = [keys.tensor_key(tenant, digest)]
        if getattr(inner, "kept", None) is not None:  # a kept tensor's copy, no TTL
            names.append(keys.kept_key(tenant, digest))
        for key in names:
            # A whole small tensor is held at twice its size; a chunked one per chunk below.
            with IN_FLIGHT.hold(tenant, 2 * _string_bytes(client, key)):
                found = _checked(client, key, tenant, digest)
                if found is not None:
                    yield from _from_redis(client, key, tenant, digest, size, *found)
                    return
        raise MissingTensorError([digest])
    msg = store.get(tenant, digest)  # in-process: already whole in memory
    if msg is None:
        raise MissingTensorError([digest])
    with IN_FLIGHT.hold(tenant, msg.ByteSize()):  # the copy the messages are cut from
        yield from codec.to_chunks(msg, size)


def _string_bytes(client, key: str) -> int:
    """The length of the value at `key` if it is a string (a whole small tensor), else 0
    (a chunked one's header is small; its chunks are held one at a time). One round trip:
    STRLEN answers 0 for a key that is not there and WRONGTYPE for a hash."""
    try:
        return int(client.strlen(key))
    except Exception:  # noqa: BLE001  (a hash, or the store failed: _checked says which)
        return 0


def _from_redis(client, key: str, tenant: str, digest: str, size: int,
                header: pb.TensorData, lengths: list[int]):
    if not lengths:  # the whole value is in the header
        yield from codec.to_chunks(header, size)
        return
    first = pb.TensorChunk(hash=digest, dtype=header.dtype, shape=header.shape,
                           total_bytes=sum(lengths))
    offset = 0
    for i, length in enumerate(lengths):
        with IN_FLIGHT.hold(tenant, length):  # until this chunk's last message is taken
            part = _read(client, key, str(i))
            if part is None or len(part) != length:  # evicted or expired while we streamed
                log.warning("tensor %s of tenant %s: went away during a fetch", digest,
                            tenant)
                raise MissingTensorError([digest])
            view = memoryview(part)
            for start in range(0, length, size):
                chunk = first if offset == 0 else pb.TensorChunk()
                chunk.offset, chunk.data = offset, bytes(view[start:start + size])
                offset += len(chunk.data)
                yield chunk
            del view, part


# Reading a 32 MiB field costs redis-py about twice that for a moment (its socket buffer
# grows as the reply arrives, then the value is copied out): at most READS such reads at
# once in this gateway.
READS = threading.BoundedSemaphore(2)


def _read(client, key: str, name: str) -> bytes | None:
    try:
        with READS:
            return client.hget(key, name)
    except Exception as e:  # noqa: BLE001  (redis.RedisError, OSError: the store went away)
        log.warning("tensor fetch: reading %s of %s failed: %s", name, key, e)
        return None


def _checked(client, key: str, tenant: str, digest: str
             ) -> tuple[pb.TensorData, list[int]] | None:
    """The header of the tensor stored at `key` and the lengths of its chunks ([] when
    the value is whole in the header), once it is known to be whole; None when it is not
    there, not whole, not ours, or the store cannot be read (as GuardedStore.get answers:
    the tensor is then not there)."""
    try:
        header, lengths = _header(client, key, digest)
        if header is not None and lengths:
            pipe = client.pipeline(transaction=False)
            for i in range(len(lengths)):
                pipe.hstrlen(key, str(i))  # 0 for a field that is not there
            pipe.hlen(key)
            if pipe.execute() != [*lengths, len(lengths) + 1]:
                header = None
    except keys.KeyNameError:
        raise
    except Exception as e:  # noqa: BLE001  (redis.RedisError, OSError)
        log.warning("tensor fetch %s of tenant %s: the store failed: %s", digest, tenant, e)
        return None
    return None if header is None else (header, lengths)


def _header(client, key: str, digest: str) -> tuple[pb.TensorData | None, list[int]]:
    """A string holds the whole TensorData; a hash its header (without bytes) and its
    bytes in CHUNK-sized fields `0`, `1`, ... (TYPE tells which)."""
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        msg = _parsed(client.get(key), digest)
        return (msg, []) if msg is not None and _whole(msg) else (None, [])
    if kind != "hash":
        return None, []  # "none": not there (anything else is not ours)
    msg = _parsed(client.hget(key, RedisTensorStore.HEADER), digest)
    lengths = _chunk_lengths(msg) if msg is not None and not msg.data else None
    return (msg, lengths) if lengths is not None else (None, [])


def _parsed(raw: bytes | None, digest: str) -> pb.TensorData | None:
    if raw is None:
        return None
    try:
        msg = pb.TensorData.FromString(raw)
    except Exception:  # noqa: BLE001  (DecodeError, RecursionError: not a message)
        return None
    return msg if msg.hash == digest and msg.dtype in ITEMSIZE else None


def _nbytes(msg: pb.TensorData) -> int:
    n = ITEMSIZE[msg.dtype]
    for s in msg.shape:
        n *= s
    return n


def _whole(msg: pb.TensorData) -> bool:
    return len(msg.data) == _nbytes(msg)


def _chunk_lengths(header: pb.TensorData) -> list[int] | None:
    """How many bytes each chunk field holds; None for a header announcing a negative
    size or more than MAX_CHUNKS chunks (a list of that many is never made)."""
    nbytes = _nbytes(header)
    if not 0 <= nbytes <= MAX_CHUNKS * CHUNK:
        return None
    full, rest = divmod(nbytes, CHUNK)
    return [CHUNK] * full + ([rest] if rest else [])
