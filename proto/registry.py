"""The worker registry in Redis: one hash of records and one sorted set of expiry times.

Workers announce themselves with a heartbeat; gateways read the live ones. Neither ever
scans the keyspace: a read costs O(workers), however many tensors and results Redis holds.

- `rg:v2:workers:{registry}` (a hash): address -> the worker's JSON record (backend,
  memory limit, pid, its load: calls running and its capacity).
- `rg:v2:workers:{registry}:expiry` (a sorted set): address -> when its heartbeat
  expires, in milliseconds of Redis's own clock (TIME), so that the clocks of the
  workers' and gateways' machines never matter.

Both keys share one hash tag, so each script below runs on one Redis Cluster node. The
heartbeat writes both at once; a read drops the expired members (by score) and any record
without a heartbeat, and answers the live ones with their records, raw: parsing, and
skipping what does not parse, is the reader's (server/pool.py).
"""

from __future__ import annotations

import json

from . import keys

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_ANNOUNCE = _NOW_MS + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return now
"""

# unpack() is limited by Lua's stack: members go in batches.
_READ = _NOW_MS + """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #gone, 1000 do
  redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 999, #gone)))
end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
if redis.call('HLEN', KEYS[1]) > #live then  -- records without a heartbeat: none is live
  local keep, orphans = {}, {}
  for _, a in ipairs(live) do keep[a] = true end
  for _, a in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not keep[a] then orphans[#orphans + 1] = a end
  end
  for i = 1, #orphans, 1000 do
    redis.call('HDEL', KEYS[1], unpack(orphans, i, math.min(i + 999, #orphans)))
  end
end
local out = {}
for i = 1, #live, 1000 do
  local records = redis.call('HMGET', KEYS[1], unpack(live, i, math.min(i + 999, #live)))
  for j = 1, #records do
    out[#out + 1] = live[i + j - 1]
    out[#out + 1] = records[j]
  end
end
return out
"""

_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
"""

KEYS = [keys.WORKER_RECORDS, keys.WORKER_EXPIRY]

# How a worker at its own bound on calls answers (RESOURCE_EXHAUSTED, these details
# first): not a failure of the call or of the worker, a reason to try another.
BUSY = "worker at capacity"


class Registry:
    """The registry's three operations over one redis-py client (plain, Sentinel-managed
    or a RedisCluster: proto/redis_client.py)."""

    def __init__(self, client) -> None:
        self.client = client
        self._announce = client.register_script(_ANNOUNCE)
        self._read = client.register_script(_READ)
        self._leave = client.register_script(_LEAVE)

    def announce(self, address: str, record: dict, ttl_s: float) -> None:
        """Register or refresh `address` for `ttl_s` seconds with `record`."""
        raw = json.dumps({**record, "address": address})
        self._announce(keys=KEYS, args=[address, raw, int(ttl_s * 1000)])

    def leave(self, address: str) -> None:
        self._leave(keys=KEYS, args=[address])

    def live(self) -> list[tuple[bytes, bytes | None]]:
        """(address, raw record) of every worker whose heartbeat has not expired; a
        record may be anything a process with access to Redis wrote."""
        flat = self._read(keys=KEYS)
        return [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]


def workers(client) -> dict[str, dict]:
    """address -> record of the live workers whose records parse (for tools and tests)."""
    out = {}
    for addr, raw in Registry(client).live():
        try:
            info = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(info, dict) and info.get("address") == addr.decode("utf-8", "replace"):
            out[info["address"]] = info
    return out
