"""The store's circuit breaker against a real redis-server (issue 15, item 4): a command
Redis refuses, or a value that does not parse, fails one call and never opens the breaker;
an outage opens it for the tenant that met it only.
"""

from __future__ import annotations

import numpy as np
import pytest

from procs import free_port, start_redis, stop
from remotegrad.proto import codec, keys
from remotegrad.proto.store import Breaker, GuardedStore, RedisTensorStore

pytestmark = pytest.mark.integration


@pytest.fixture
def redis():
    r = start_redis(free_port())
    yield r
    stop(r.proc)


def _store(redis) -> tuple[GuardedStore, list[str]]:
    errors: list[str] = []
    return GuardedStore(RedisTensorStore(redis.url), errors.append), errors


def test_a_refused_command_or_a_bad_value_fails_one_call_only(redis):
    store, errors = _store(redis)
    x = codec.encode_array(np.arange(100, dtype=np.float32))
    assert store.put("alice", x) and store.put("bob", x)
    client = redis.client()
    client.delete(keys.tensor_key("alice", x.hash))
    client.rpush(keys.tensor_key("alice", x.hash), b"a list")  # WRONGTYPE for GET
    assert store.get("alice", x.hash) is None and errors == ["get"]
    # No pause: the next calls, alice's own included, go to Redis at once.
    assert store.get("bob", x.hash).data == x.data
    assert store.put("alice", x) and store.get("alice", x.hash).data == x.data
    client.set(keys.tensor_key("bob", x.hash), b"\xff\x00 damaged")
    assert store.get("bob", x.hash) is None  # missing (the SDK resends), not an error
    assert errors == ["get"] and not client.exists(keys.tensor_key("bob", x.hash))
    with pytest.raises(keys.KeyNameError):  # the caller's mistake, raised
        store.get("alice", f"{x.hash}:0")


def test_an_outage_opens_the_breaker_for_the_tenant_that_met_it(redis):
    store, errors = _store(redis)
    x = codec.encode_array(np.arange(100, dtype=np.float32))
    assert store.put("alice", x) and store.put("bob", x)
    port = redis.port
    stop(redis.proc)
    assert store.get("alice", x.hash) is None and errors == ["get"]  # the outage
    redis.proc = start_redis(port).proc  # back at once (empty)
    # Within alice's pause: her calls answer the fallback without trying; bob's go through.
    assert store.missing("alice", [x.hash]) is None
    assert store.missing("bob", [x.hash]) == [x.hash]
    assert store.put("bob", x) and store.get("bob", x.hash).data == x.data
    assert errors == ["get"]


def test_open_scopes_are_bounded():
    b = Breaker("test")
    for i in range(3 * Breaker.MAX_SCOPES):
        b.call("op", lambda: (_ for _ in ()).throw(ConnectionError("down")), None, f"t{i}")
    assert len(b._down_until) <= Breaker.MAX_SCOPES
