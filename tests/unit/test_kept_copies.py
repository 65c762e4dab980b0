"""Kept tensors' durable copies (proto/kept.py) and the gateway's durability
(server/durable.py) against a real redis-server run as the cluster runs it
(maxmemory-policy volatile-lru): cache pressure evicts the cache and never a copy; the
ledger's quota refuses atomically; releases and idle tenants free what they held."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from procs import free_port, stop, wait_until
from remotegrad.proto import codec, keys
from remotegrad.proto.kept import KeptCopies, with_kept
from remotegrad.proto.store import RedisTensorStore
from remotegrad.server.durable import Durability, QuotaExceededError
from remotegrad.server.holders import Holders
from remotegrad.server.write_behind import WriteBehind


@pytest.fixture(scope="module")
def redis_url():
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not on PATH")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--maxmemory", "24mb",
                             "--maxmemory-policy", "volatile-lru"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis
    wait_until(lambda: redis.Redis.from_url(url).ping(), "redis-server", procs=[proc])
    yield url
    stop(proc)


@pytest.fixture()
def store(redis_url):
    s = with_kept(RedisTensorStore(redis_url, ttl=3600))
    s.redis.flushall()
    return s


def _msg(n: int, seed: int = 0):
    return codec.encode_array(np.random.default_rng(seed).standard_normal(n)
                              .astype(np.float32))


def test_cache_pressure_evicts_the_cache_never_a_kept_copy(store):
    kept = _msg(1 << 18)  # 1 MiB
    store.kept.write("a", kept)
    cached = [_msg(1 << 18, seed) for seed in range(1, 41)]  # 40 MiB into 24 MB
    for m in cached:
        store.put("b", m)
    assert store.get("a", kept.hash).data == kept.data  # found through the store's view
    assert store.missing("a", [kept.hash]) == []
    gone = store.inner.missing("b", [m.hash for m in cached])
    assert len(gone) > 10  # the cache did evict
    assert store.redis.ttl(keys.kept_key("a", kept.hash)) == -1  # no TTL: never volatile


def test_the_quota_refuses_all_or_nothing_and_releases_free(store):
    k: KeptCopies = store.kept
    a, b, c = (_msg(256, s).hash for s in range(3))  # names; the ledger counts bytes
    s1 = k.settle("t", [], {a: 600, b: 300}, quota=1000, now=1.0)
    assert not s1.refused and sorted(s1.new) == sorted([a, b]) and k.used("t") == 900
    s2 = k.settle("t", [], {a: 600, c: 200}, quota=1000, now=2.0)  # a is there; c passes
    assert s2.refused and s2.new == [] and k.used("t") == 900
    s3 = k.settle("t", [b], {c: 200}, quota=1000, now=3.0)  # releasing b makes room
    assert not s3.refused and s3.freed == {b: 300} and s3.new == [c]
    assert k.used("t") == 800
    s4 = k.settle("t", [a], {a: 600}, quota=1000, now=4.0)  # released and kept: stays
    assert s4.freed == {a: 600} and s4.new == [a] and k.used("t") == 800
    assert k.used("other") == 0


def test_durability_writes_behind_refuses_over_quota_and_releases(store):
    holders = Holders()
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=5 << 20, idle=0, holders=holders)
    try:
        w1, w2 = _msg(1 << 18, 1), _msg(1 << 18, 2)  # 1 MiB each
        d.called("t", [])
        d.admit("t", [w1])
        assert behind.flush()
        assert store.get("t", w1.hash).data == w1.data
        big = _msg(5 << 18, 3)  # 5 MiB: over the 5 MiB quota with w1
        with pytest.raises(QuotaExceededError, match="quota"):
            d.admit("t", [big])
        assert behind.flush() and store.kept.missing("t", [big.hash]) == [big.hash]
        holders.note(w1.hash, "w:1", len(w1.data))
        d.called("t", [w1.hash])  # the SDK dropped w1; w2 is the next step's
        assert holders.unknown([w1.hash]) == [w1.hash]
        d.admit("t", [w2])
        assert behind.flush()
        assert store.kept.missing("t", [w1.hash, w2.hash]) == [w1.hash]
        assert store.kept.used("t") == len(w2.data)
        d.called("t", [w2.hash])  # a release with no keep: settled by the sweep
        d.settle_pending()
        assert behind.flush() and store.kept.used("t") == 0
        assert store.kept.missing("t", [w2.hash]) == [w2.hash]
    finally:
        d.close()


def test_an_idle_tenants_copies_are_released_an_active_ones_kept(store):
    now = [1000.0]
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=60, clock=lambda: now[0])
    try:
        old, new = _msg(64, 1), _msg(64, 2)
        d.admit("idle", [old])
        now[0] += 50
        d.admit("busy", [new])
        assert behind.flush()
        assert set(store.kept.tenants()) == {"idle", "busy"}
        now[0] += 30  # idle: 80 s since its call; busy: 30 s
        d.forget_idle()
        assert store.kept.missing("idle", [old.hash]) == [old.hash]
        assert store.kept.get("busy", new.hash).data == new.data
        assert store.kept.tenants() == ["busy"]
    finally:
        d.close()


def test_write_behind_runs_jobs_in_the_order_given():
    done = []
    behind = WriteBehind(None)
    for i in range(50):
        behind.later(lambda i=i: done.append(i), 10)
    assert behind.flush() and done == list(range(50))


def test_bytes_wait_in_the_gateway_until_their_copy_is_written():
    """With the store down, kept bytes stay in the gateway (recover answers them) until
    the client releases them; a name it never kept is not recovered."""
    import redis
    down = KeptCopies(redis.Redis(port=free_port(), socket_connect_timeout=0.5))
    d = Durability(down, WriteBehind(None), quota=0, idle=0)
    try:
        w = _msg(1024, 5)
        d.admit("t", [w])  # no error: the call is answered, the copy waits
        assert [m.data for m in d.recover("t", [w.hash])] == [w.data]
        assert d.recover("t", [w.hash, _msg(8, 6).hash]) is None
        assert d.recover("u", [w.hash]) is None  # another tenant's name
        d.called("t", [w.hash])
        assert d.recover("t", [w.hash]) is None
    finally:
        d.close()


def test_released_names_that_are_not_digests_name_nothing_and_too_many_are_refused(store):
    from remotegrad.proto.catalog import OpError
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        w = _msg(64, 7)
        d.admit("t", [w])
        d.called("t", ["*", "rg:v1:kept:t:x", w.hash.upper()])  # ignored: not digests
        d.settle_pending()
        assert behind.flush() and store.kept.get("t", w.hash) is not None
        with pytest.raises(OpError, match="at most"):
            d.called("t", [w.hash] * ((1 << 16) + 1))
    finally:
        d.close()


def test_a_release_that_a_pending_lineage_reads_waits_for_its_copy(store):
    """W2 = f(W1) is not persisted yet (its write waits behind a closed store); the SDK
    releases W1: W1's copy stays until W2's is written, then goes."""
    import threading

    from remotegrad.proto import remotegrad_pb2 as pb
    from remotegrad.proto.codec import WireNode
    gate = threading.Event()
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0, unpersisted=0)
    try:
        w1, w2 = _msg(64, 1), _msg(64, 2)
        d.admit("t", [w1])
        assert behind.flush()
        nodes = [WireNode(0, "leaf", (), {"hash": w1.hash, "dtype": "float32",
                                          "shape": (64,)}), WireNode(1, "neg", (0,), {})]
        req = codec.encode_request(nodes, [], [1])
        behind.later(gate.wait)  # the next writes wait
        d.admit("t", [w2], (req, {w2.hash: 0}))
        assert d.lineage.needed("t", w1.hash)
        d.called("t", [w1.hash])
        d.settle_pending()
        assert store.kept.get("t", w1.hash) is not None  # deferred: W2's lineage reads it
        resp = pb.ComputeResponse(results=[w2])
        assert [m.data for m in d.recover("t", [w2.hash], lambda r: resp)] == [w2.data]
        gate.set()
        assert behind.flush()
        d.settle_pending()
        assert behind.flush()
        assert store.kept.missing("t", [w1.hash, w2.hash]) == [w1.hash]
        assert not d.lineage.needed("t", w1.hash)
    finally:
        d.close()
