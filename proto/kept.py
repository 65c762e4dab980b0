"""Durable copies of kept tensors in the shared store, and the tenant's ledger of them.

A kept tensor (a parameter after a step, optimiser state: anything the SDK holds only by
name) lives in the memory of the worker that computed it; its copy here is what survives
that worker. Unlike a cached leaf it has no TTL, and the cluster's Redis runs
`maxmemory-policy volatile-lru`, which evicts only keys that have a TTL: so neither the
cache's pressure (another tenant's uploads) nor time can remove it while the SDK still
references it. It goes when the client releases it (ComputeRequest.release) or when its
tenant has been idle longer than --kept-idle (server/durable.py).

Why volatile-lru rather than noeviction: the cache (uploaded leaves, results) must keep
evicting under pressure, and noeviction would make every cache write fail once Redis is
full; volatile-lru evicts the cache and never these keys. What bounds them instead is
each tenant's quota (--kept-quota-bytes), checked atomically in the ledger before a copy
is written: over it, the call is refused (RESOURCE_EXHAUSTED) and nobody else's data moves.

Layout (proto/keys.py): the copy is one hash (`header`: the TensorData without its bytes,
`0`..`n-1`: the bytes in CHUNK-sized pieces) tagged by its digest, so it is whole or
absent; the ledger is one hash per tenant tagged by the tenant (`bytes`, `seen`,
`h:<digest>` -> bytes), so one script on one slot reserves and releases (Redis Cluster).
"""

from __future__ import annotations

import logging

from . import keys
from . import remotegrad_pb2 as pb

log = logging.getLogger("remotegrad.store")

CHUNK = 32 << 20  # bytes per hash field (Redis caps one value at 512 MB)
HEADER = b"header"
# A holder that did not write a copy because the client had released the name before its
# write began (coalescing, worker/held.py) says so in the copy's key: a hash with this
# field alone, absent to every reader, and seen by the gateway's sweep (landed()).
SKIPPED = b"skipped"

# KEYS[1] the ledger. ARGV: quota (0: none), now, how many released, the released digests,
# how many forced pairs, the (digest, bytes) pairs forced, then (digest, bytes) pairs to
# keep. Forced ones first (copies made while the ledger could not count them: counted
# whatever the quota, and a forced digest also released goes), then releases (a digest
# both released and kept stays), then the quota: the new copies are all reserved, or none
# (refused). Returns {refused, bytes used before the new ones, {digest, bytes} freed,
# {digest} new}.
SETTLE = """
local ledger = KEYS[1]
local quota, nrel = tonumber(ARGV[1]), tonumber(ARGV[3])
local nforced = tonumber(ARGV[4 + nrel])
local first = 5 + nrel + 2 * nforced
for i = 5 + nrel, first - 1, 2 do
  if redis.call('HSETNX', ledger, 'h:' .. ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HINCRBY', ledger, 'bytes', tonumber(ARGV[i + 1]))
  end
end
local freed = {}
for i = 4, 3 + nrel do
  local n = redis.call('HGET', ledger, 'h:' .. ARGV[i])
  if n then
    redis.call('HDEL', ledger, 'h:' .. ARGV[i])
    redis.call('HINCRBY', ledger, 'bytes', -tonumber(n))
    freed[#freed + 1] = ARGV[i]
    freed[#freed + 1] = n
  end
end
local used = tonumber(redis.call('HGET', ledger, 'bytes') or '0')
local new, need = {}, 0
for i = first, #ARGV, 2 do
  if redis.call('HEXISTS', ledger, 'h:' .. ARGV[i]) == 0 then
    new[#new + 1] = ARGV[i]
    need = need + tonumber(ARGV[i + 1])
  end
end
redis.call('HSET', ledger, 'seen', ARGV[2])
if #new > 0 and quota > 0 and used + need > quota then
  return {1, used, freed, {}}
end
for i = first, #ARGV, 2 do
  if redis.call('HEXISTS', ledger, 'h:' .. ARGV[i]) == 0 then
    redis.call('HSET', ledger, 'h:' .. ARGV[i], ARGV[i + 1])
  end
end
if need > 0 then redis.call('HINCRBY', ledger, 'bytes', need) end
return {0, used, freed, new}
"""

# KEYS[1] the ledger; ARGV[1] the idle limit's time. Drops the whole ledger of a tenant
# not seen since then and returns {digest, bytes} of what it held (nil: not idle).
FORGET_IDLE = """
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen') or '0')
if seen > tonumber(ARGV[1]) then return false end
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'h:' then
    out[#out + 1] = string.sub(all[i], 3)
    out[#out + 1] = all[i + 1]
  end
end
redis.call('DEL', KEYS[1])
return out
"""


class Settled:
    """What one settle() did: `refused` (over the quota: nothing new reserved), `used`
    (the tenant's bytes before the new copies), `freed` ({digest: bytes} released),
    `new` (the digests reserved now, whose bytes must be written)."""

    def __init__(self, refused: bool, used: int, freed: dict[str, int], new: list[str]):
        self.refused, self.used, self.freed, self.new = refused, used, freed, new


class KeptCopies:
    """Durable copies and ledgers in one Redis (or Redis Cluster) through `redis`."""

    def __init__(self, redis) -> None:
        self.redis = redis
        self._settle = redis.register_script(SETTLE)
        self._forget_idle = redis.register_script(FORGET_IDLE)

    # --- the ledger --------------------------------------------------------------------
    def settle(self, tenant: str, released, kept: dict[str, int], quota: int,
               now: float, forced: dict[str, int] | None = None) -> Settled:
        """Count `forced` ({digest: bytes} kept while the ledger could not be reached:
        whatever the quota), release `released`, then reserve `kept` within the quota."""
        released = [keys.check_digest(d) for d in released]
        forced = forced or {}
        args = [int(quota), repr(float(now)), len(released), *released, len(forced)]
        for digest, nbytes in (*forced.items(), *kept.items()):
            args += [keys.check_digest(digest), int(nbytes)]
        refused, used, freed, new = self._settle(keys=[keys.kept_ledger_key(tenant)],
                                                 args=args)
        return Settled(bool(refused), int(used), _pairs(freed), [_text(d) for d in new])

    def forget_if_idle(self, tenant: str, since: float) -> dict[str, int] | None:
        """Release everything of a tenant not seen since `since` (a time.time()): what
        it held ({digest: bytes}), or None if it was seen since."""
        out = self._forget_idle(keys=[keys.kept_ledger_key(tenant)],
                                args=[repr(float(since))])
        return None if out is None else _pairs(out)

    def used(self, tenant: str) -> int:
        return int(self.redis.hget(keys.kept_ledger_key(tenant), "bytes") or 0)

    def note_tenant(self, tenant: str) -> None:
        self.redis.sadd(keys.KEPT_TENANTS, keys.check_tenant(tenant))

    def tenants(self) -> list[str]:
        return sorted(_text(t) for t in self.redis.smembers(keys.KEPT_TENANTS))

    def drop_tenant(self, tenant: str) -> None:
        self.redis.srem(keys.KEPT_TENANTS, tenant)

    # --- the copies --------------------------------------------------------------------
    def write(self, tenant: str, msg: pb.TensorData) -> None:
        self.write_parts(tenant, msg.hash, msg.dtype, msg.shape, memoryview(msg.data))

    def write_parts(self, tenant: str, name: str, dtype: str, shape, data) -> None:
        """The copy of `name` from its raw bytes (`data`: bytes or a memoryview, e.g. of
        the array a worker holds: sent as they are, not copied into a message first)."""
        key = keys.kept_key(tenant, name)
        header = pb.TensorData(dtype=dtype, shape=shape, hash=name)
        view = _bytes(data)
        # One transaction on one key (one slot): whole or absent, never half written.
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        for i in range(-(-len(view) // CHUNK)):
            pipe.hset(key, str(i), view[i * CHUNK:(i + 1) * CHUNK])
        pipe.hset(key, HEADER, header.SerializeToString())
        pipe.execute()

    def write_many(self, tenant: str, copies, skipped=()) -> None:
        """The copies of one call's kept results, `copies` as (name, dtype, shape, data)
        (write_parts' arguments), in one round trip: each copy of up to CHUNK bytes is
        one HSET of all its fields, atomic by itself (whole or absent). No DELETE first:
        a provenance name always stands for the same bytes, so an older copy under it
        has the same fields. Larger copies go one transaction each (write_parts).
        `skipped`: names whose copies are not written (released): marked as such."""
        pipe = self.redis.pipeline(transaction=False)
        for name in skipped:
            pipe.hset(keys.kept_key(tenant, name), SKIPPED, b"1")
        for name, dtype, shape, data in copies:
            view = _bytes(data)
            if len(view) > CHUNK:
                self.write_parts(tenant, name, dtype, shape, view)
                continue
            header = pb.TensorData(dtype=dtype, shape=shape, hash=name).SerializeToString()
            fields = {HEADER: header, "0": view} if len(view) else {HEADER: header}
            pipe.hset(keys.kept_key(tenant, name), mapping=fields)
        pipe.execute()

    def delete(self, tenant: str, digests) -> None:
        if digests:
            pipe = self.redis.pipeline(transaction=False)
            for d in digests:
                pipe.delete(keys.kept_key(tenant, d))
            pipe.execute()

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        fields = self.redis.hgetall(keys.kept_key(tenant, digest))
        if HEADER not in fields:  # absent, or only marked skipped
            return None
        try:
            msg = pb.TensorData.FromString(fields[HEADER])
        except Exception:  # noqa: BLE001  (not ours: missing, like an absent one)
            return None
        parts = [fields.get(str(i).encode())
                 for i in range(len(fields) - 1 - (SKIPPED in fields))]
        if msg.hash != digest or any(p is None for p in parts):
            log.warning("kept copy %s of tenant %s is damaged; not used", digest, tenant)
            return None
        msg.data = b"".join(parts)
        return msg

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        if not digests:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for d in digests:
            pipe.hexists(keys.kept_key(tenant, d), HEADER)
        return [d for d, present in zip(digests, pipe.execute()) if not present]

    def landed(self, tenant: str, digests: list[str]) -> dict[str, bool]:
        """Of `digests`, those whose holder wrote the copy (True) or marked it skipped
        (False); the others are absent from the answer."""
        if not digests:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for d in digests:
            pipe.hexists(keys.kept_key(tenant, d), HEADER)
            pipe.hexists(keys.kept_key(tenant, d), SKIPPED)
        got = pipe.execute()
        return {d: bool(got[2 * i]) for i, d in enumerate(digests)
                if got[2 * i] or got[2 * i + 1]}


class WithKept:
    """A tensor store whose reads fall back to the durable copies of kept tensors: what
    a worker (or the gateway) reads by name is found whether it was uploaded (the
    store's own keys, with a TTL) or kept (KeptCopies, without one)."""

    def __init__(self, store, kept: KeptCopies) -> None:
        self.inner, self.kept, self.shared = store, kept, store.shared
        self.redis = getattr(store, "redis", None)

    def get(self, tenant: str, digest: str) -> pb.TensorData | None:
        msg = self.inner.get(tenant, digest)
        return msg if msg is not None else self.kept.get(tenant, digest)

    def put(self, tenant: str, msg: pb.TensorData):
        return self.inner.put(tenant, msg)

    def missing(self, tenant: str, digests: list[str]) -> list[str]:
        return self.kept.missing(tenant, self.inner.missing(tenant, digests))


def with_kept(store):
    """`store` with kept copies readable through it, if it is a shared Redis store."""
    redis = getattr(store, "redis", None)
    return WithKept(store, KeptCopies(redis)) if store.shared and redis is not None else store


def _bytes(data) -> memoryview:
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _pairs(flat) -> dict[str, int]:
    return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
