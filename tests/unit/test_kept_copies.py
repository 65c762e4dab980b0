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


def _named(msg, name: str):
    """`msg` under a provenance name (as a worker holds and writes a kept result)."""
    out = type(msg)()
    out.CopyFrom(msg)
    out.hash = keys.kept_name(name, 0)
    return out


def test_durability_reserves_before_the_call_refuses_over_quota_and_releases(store):
    """Sizes are reserved before anything runs; over the quota nothing is; a release
    frees the ledger and deletes the copy (which the worker wrote, not the gateway)."""
    holders = Holders()
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=5 << 20, idle=0, holders=holders)
    try:
        w1, w2 = _named(_msg(1 << 18, 1), "w1"), _named(_msg(1 << 18, 2), "w2")  # 1 MiB
        d.called("t", [])
        assert d.reserve("t", {w1.hash: len(w1.data)}) == [w1.hash]
        assert store.kept.used("t") == len(w1.data)  # before any byte exists
        store.kept.write("t", w1)  # its worker's write behind
        big = keys.kept_name("big", 0)
        with pytest.raises(QuotaExceededError, match="quota"):
            d.reserve("t", {big: 5 << 20})  # 5 MiB: over the 5 MiB quota with w1
        assert store.kept.used("t") == len(w1.data)
        holders.note("t", w1.hash, "w:1", len(w1.data))
        d.called("t", [w1.hash])  # the SDK dropped w1; w2 is the next step's
        assert holders.unknown("t", [w1.hash]) == [w1.hash]
        assert d.reserve("t", {w2.hash: len(w2.data)}) == [w2.hash]
        store.kept.write("t", w2)
        assert behind.flush()
        assert store.kept.missing("t", [w1.hash, w2.hash]) == [w1.hash]
        assert store.kept.used("t") == len(w2.data)
        d.called("t", [w2.hash])  # a release with no keep: settled by the sweep
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 0
        assert store.kept.missing("t", [w2.hash]) == [w2.hash]
    finally:
        d.close()


def test_a_failed_call_gives_back_what_it_reserved_not_what_existed(store):
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        old, new = keys.kept_name("old", 0), keys.kept_name("new", 0)
        d.reserve("t", {old: 100})
        reserved = d.reserve("t", {old: 100, new: 50})
        assert reserved == [new] and store.kept.used("t") == 150
        d.unreserve("t", reserved)  # the call failed
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 100
    finally:
        d.close()


def test_an_idle_tenants_copies_are_released_an_active_ones_kept(store):
    now = [1000.0]
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=60, clock=lambda: now[0])
    try:
        old, new = _named(_msg(64, 1), "old"), _named(_msg(64, 2), "new")
        d.reserve("idle", {old.hash: len(old.data)})
        store.kept.write("idle", old)
        now[0] += 50
        d.reserve("busy", {new.hash: len(new.data)})
        store.kept.write("busy", new)
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


def _request(reads: str):
    from remotegrad.proto.codec import WireNode
    nodes = [WireNode(0, "leaf", (), {"hash": reads, "dtype": "float32", "shape": (64,)}),
             WireNode(1, "neg", (0,), {})]
    req = codec.encode_request(nodes, [], [1])
    req.keep.append(1)
    return req


def test_with_the_store_down_a_call_runs_and_its_lineage_recovers_it():
    """Nothing can be reserved with the store down: the call runs (no error); its
    result's lineage answers recover(); a name it never kept is not recovered."""
    import redis

    from remotegrad.proto import remotegrad_pb2 as pb
    down = KeptCopies(redis.Redis(port=free_port(), socket_connect_timeout=0.5))
    d = Durability(down, WriteBehind(None), quota=0, idle=0)
    try:
        w, leaf = keys.kept_name("w", 0), _msg(64, 5).hash
        assert d.reserve("t", {w: 256}) == []
        d.produced("t", _request(leaf), {w: 0})
        assert d.pending("t", w) and not d.pending("u", w)
        ran = []
        resp = pb.ComputeResponse(results=[pb.TensorData(hash=w, dtype="float32",
                                                         shape=[64])], worker="w:2")
        assert d.recover("t", [w], lambda r, at: ran.append(r) or resp) == "w:2"
        assert len(ran) == 1 and list(ran[0].keep) == [1]
        assert d.recover("t", [w, keys.kept_name("x", 0)], lambda r, at: resp) is None
        assert d.recover("u", [w], lambda r, at: resp) is None  # another tenant's name
    finally:
        d.close()


def test_released_names_that_are_not_digests_name_nothing_and_too_many_are_refused(store):
    from remotegrad.proto.catalog import OpError
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        w = _named(_msg(64, 7), "w")
        d.reserve("t", {w.hash: len(w.data)})
        store.kept.write("t", w)
        d.called("t", ["*", "rg:v1:kept:t:x", w.hash.upper()])  # ignored: not digests
        d.sweep_once()
        assert behind.flush() and store.kept.get("t", w.hash) is not None
        with pytest.raises(OpError, match="at most"):
            d.called("t", [w.hash] * ((1 << 16) + 1))
    finally:
        d.close()


def test_a_release_that_a_pending_lineage_reads_waits_for_its_copy(store):
    """W2 = f(W1) has no copy yet (its holder has not written it); the SDK releases W1:
    W1's copy stays until the store has W2's (the sweep asks), then goes."""
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        w1, w2 = _named(_msg(64, 1), "w1"), _named(_msg(64, 2), "w2")
        d.reserve("t", {w1.hash: 256})
        store.kept.write("t", w1)
        d.reserve("t", {w2.hash: 256})
        d.produced("t", _request(w1.hash), {w2.hash: 0})
        assert d.lineage.needed("t", w1.hash)
        d.called("t", [w1.hash])
        d.sweep_once()
        assert behind.flush()
        assert store.kept.get("t", w1.hash) is not None  # deferred: W2's lineage reads it
        store.kept.write("t", w2)  # W2's holder wrote its copy
        d.sweep_once()  # seen: W2's lineage goes, W1's release with it
        d.sweep_once()
        assert behind.flush()
        assert store.kept.missing("t", [w1.hash, w2.hash]) == [w1.hash]
        assert not d.lineage.needed("t", w1.hash) and not d.pending("t", w2.hash)
    finally:
        d.close()


def test_a_release_of_a_name_whose_copy_is_on_its_way_waits_for_it(store):
    """Deleting before the holder's write lands would leave the late copy uncounted."""
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        w = _named(_msg(64, 3), "w")
        d.reserve("t", {w.hash: 256})
        d.produced("t", _request(_msg(64, 4).hash), {w.hash: 0})
        d.called("t", [w.hash])
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 256  # still reserved
        store.kept.write("t", w)  # lands late
        d.sweep_once()
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 0
        assert store.kept.missing("t", [w.hash]) == [w.hash]
    finally:
        d.close()


def test_a_copy_written_from_an_arrays_memory_reads_back_whole(store):
    """A worker writes a held array's copy from its own memory (no message, no copy)."""
    name = keys.kept_name("array", 0)
    for value in (np.arange(12, dtype=np.float16).reshape(3, 4), np.array(True),
                  np.zeros((0, 5), dtype=np.float32)):
        store.kept.write_parts("t", name, value.dtype.name, value.shape,
                               memoryview(value.reshape(-1).view(np.uint8)))
        back = codec.decode_array(store.kept.get("t", name))
        assert back.dtype == value.dtype and back.shape == value.shape
        np.testing.assert_array_equal(back, value)


def test_one_calls_copies_are_written_in_one_round_trip_each_whole(store):
    values = {keys.kept_name("many", i): np.full((i, 3), i, dtype=np.float32)
              for i in range(4)}  # the first one empty
    store.kept.write_many("t", [(n, v.dtype.name, v.shape, memoryview(v.reshape(-1)
                                 .view(np.uint8))) for n, v in values.items()])
    store.kept.write_many("t", [(n, v.dtype.name, v.shape, v.tobytes())
                                for n, v in values.items()])  # again: the same copies
    for name, value in values.items():
        np.testing.assert_array_equal(codec.decode_array(store.kept.get("t", name)), value)


def test_lineage_past_its_bound_drops_the_oldest_and_frees_what_only_they_read(caplog):
    """One call may keep more targets than the lineage holds (40,000 in
    tests/security/test_linear_requests.py): the oldest entries go, with one log line, and
    the names only they read are handed back as needed by none (the bound's path raised
    AttributeError, a Compute answered INTERNAL)."""
    from remotegrad.proto import remotegrad_pb2 as pb
    from remotegrad.server.lineage import ENTRY_BYTES, Lineage, Origin

    def origin(dep: str) -> Origin:
        req = pb.ComputeRequest()
        req.graph.nodes.add(id=0, op="leaf").attrs["hash"].s = dep
        return Origin(req, {})

    lineage = Lineage(max_bytes=3 * ENTRY_BYTES + origin("c" * 32).nbytes)  # one call's 3
    names = [f"{i:032x}" for i in range(5)]
    dep_a, dep_b = "a" * 32, "b" * 32
    assert lineage.note("t", origin(dep_a), names[:2]) == []
    freed = lineage.note("t", origin(dep_b), names[2:])
    # both of the first call's entries went (their deferred releases are decided now);
    # b is still read
    assert freed == [("t", dep_a), ("t", names[0]), ("t", names[1])]
    assert [lineage.origin("t", n) is None for n in names] == [True, True, False, False, False]
    assert lineage.needed("t", dep_b) and not lineage.needed("t", dep_a)
    assert sum("lineage of 2 kept tensors dropped" in r.message for r in caplog.records) == 1


def test_a_release_deferred_for_a_name_whose_lineage_the_bound_drops_is_made(store):
    """No sweep asks about a name past the lineage's bound: its deferred release is
    decided when the bound drops it (it stayed deferred, its bytes counted, for good)."""
    behind = WriteBehind(store)
    from remotegrad.server.lineage import ENTRY_BYTES, Origin
    d = Durability(store.kept, behind, quota=0, idle=0)
    d.lineage.max_bytes = ENTRY_BYTES + Origin(_request(_msg(64, 7).hash), {}).nbytes  # one
    try:
        w, later = _named(_msg(64, 5), "w"), _named(_msg(64, 6), "later")
        d.reserve("t", {w.hash: 256})
        d.produced("t", _request(_msg(64, 7).hash), {w.hash: 0})
        d.called("t", [w.hash])  # deferred: its copy is on its way
        d.produced("t", _request(_msg(64, 8).hash), {later.hash: 0})  # w's lineage goes
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 0
    finally:
        d.close()


def test_a_name_kept_again_keeps_its_copy_whatever_release_was_waiting(store):
    """The SDK dropped w (a release, made at the next settle, or deferred while a pending
    lineage reads it) and then makes the call that keeps w again (answered from the
    result cache, or computed): the answer names w, so its copy and its bytes stay (the
    settle deleted them: the next call naming w failed FAILED_PRECONDITION)."""
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        w, v, u = (_named(_msg(64, 9 + i), n) for i, n in enumerate("wvu"))
        for x in (w, v):
            d.reserve("t", {x.hash: 256})
            store.kept.write("t", x)
        d.produced("t", _request(v.hash), {u.hash: 0})  # u = f(v), its copy on its way
        d.called("t", [w.hash, v.hash])  # w to be released, v deferred (u's lineage)
        d.kept_again("t", [w.hash, v.hash])
        store.kept.write("t", u)
        d.sweep_once()  # u's copy seen: v's deferred release would be made now
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 512
        assert store.kept.missing("t", [w.hash, v.hash]) == []
        d.called("t", [w.hash])  # dropped again, not kept again: released
        d.sweep_once()
        assert behind.flush() and store.kept.missing("t", [w.hash]) == [w.hash]
    finally:
        d.close()


def test_per_tenant_state_goes_when_the_tenant_is_done(store):
    """A gateway sees many tenants over its life: the settle locks (and the empty sets
    of releases waiting) of tenants that are not settling now are not kept (one lock per
    tenant ever seen was)."""
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        for i in range(200):
            tenant = f"t{i}"
            w = keys.kept_name(tenant, 0)
            d.called(tenant, [])
            d.reserve(tenant, {w: 64})
            d.kept_again(tenant, [w])
            d.called(tenant, [w])
        d.sweep_once()
        assert behind.flush()
        assert d._tenant_locks == {} and d._deferred == {}
        assert store.kept.used("t7") == 0  # released all the same
    finally:
        d.close()


def _inline_request(seed: int, mib: int = 1):
    """A request keeping -a, a of `mib` MiB sent inline (its lineage holds those bytes)."""
    from remotegrad.proto.codec import WireNode
    a = np.random.default_rng(seed).standard_normal(mib << 18).astype(np.float32)
    h = codec.array_hash(a)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": a.shape}),
             WireNode(1, "neg", (0,), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a, h)], [1])
    req.keep.append(1)
    return req


def test_lineage_is_bounded_in_the_bytes_of_the_requests_it_keeps(store):
    """Ten steps with a 1 MiB inline leaf each under a 4 MiB bound: the lineage keeps the
    newest requests that fit and drops the oldest (a bound of 4096 entries held them all:
    a few steps with large batches held gigabytes); a request that keeps many names is
    counted once."""
    from remotegrad.server.lineage import ENTRY_BYTES
    d = Durability(store.kept, WriteBehind(store), quota=0, idle=0)
    d.lineage.max_bytes = 4 << 20
    try:
        names = [keys.kept_name(f"step{i}", 0) for i in range(10)]
        for i, name in enumerate(names):
            d.produced("t", _inline_request(i), {name: 0})
        pending = [d.pending("t", n) for n in names]
        assert pending[-3:] == [True] * 3 and pending[:7] == [False] * 7
        assert d.lineage.nbytes <= 4 << 20
        many = {keys.kept_name("many", i): i for i in range(1000)}
        d.produced("t", _inline_request(11), many)  # one 1 MiB request, 1000 names
        assert all(d.pending("t", n) for n in many) and d.lineage.nbytes <= 4 << 20
        for n in many:
            d.lineage.done("t", n)
        assert d.lineage.nbytes == sum(1 for n in names if d.pending("t", n)) * (
            d.lineage.origin("t", names[-1]).nbytes + ENTRY_BYTES)
    finally:
        d.close()


def test_copies_made_while_the_ledger_was_unreachable_are_counted_whatever_the_quota(store):
    """settle's forced pairs (copies answered while the ledger could not count them) are
    counted even past the quota, once each; one also released goes at once (freed, so
    its copy is deleted); the new ones are then refused over the quota."""
    k: KeptCopies = store.kept
    a, b, c = (keys.kept_name(n, 0) for n in "abc")
    s1 = k.settle("t", [], {}, quota=100, now=1.0, forced={a: 80, b: 50})
    assert not s1.refused and k.used("t") == 130
    s2 = k.settle("t", [b], {c: 10}, quota=100, now=2.0, forced={a: 80, b: 50})
    assert s2.freed == {b: 50} and not s2.refused and s2.new == [c] and k.used("t") == 90
    s3 = k.settle("t", [], {keys.kept_name("d", 0): 20}, quota=100, now=3.0)
    assert s3.refused and k.used("t") == 90


def test_a_copy_its_holder_skipped_keeps_its_lineage_while_needed_then_is_released(store):
    """Coalescing: w1's holder did not write its copy (the client released w1 before
    the write began) and marked it skipped. w2 = f(w1) has no copy yet, so w1's lineage
    stays (recomputing w2 needs w1) and so do its ledger bytes; once w2's copy lands,
    w1's lineage goes and its release is made (ledger and mark deleted). A name only
    marked skipped is absent to readers."""
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        w1, w2 = _named(_msg(64, 21), "w1"), _named(_msg(64, 22), "w2")
        d.reserve("t", {w1.hash: 256})
        d.produced("t", _request(_msg(64, 23).hash), {w1.hash: 0})
        d.reserve("t", {w2.hash: 256})
        d.produced("t", _request(w1.hash), {w2.hash: 0})
        d.called("t", [w1.hash])  # the next step released w1 (deferred: on its way)
        store.kept.write_many("t", [], [w1.hash])  # its holder skipped it
        assert store.missing("t", [w1.hash]) == [w1.hash]  # absent to readers
        assert store.get("t", w1.hash) is None
        d.sweep_once()
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 512
        assert d.pending("t", w1.hash)  # its lineage: w2's recomputation needs it
        store.kept.write("t", w2)  # w2's copy lands
        d.sweep_once()
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 256
        assert not d.pending("t", w1.hash) and not d.pending("t", w2.hash)
        assert not store.redis.exists(keys.kept_key("t", w1.hash)) and d._skipped == set()
    finally:
        d.close()


def test_a_skipped_copy_no_lineage_reads_is_released_at_once(store):
    behind = WriteBehind(store)
    d = Durability(store.kept, behind, quota=0, idle=0)
    try:
        w = _named(_msg(64, 24), "w")
        d.reserve("t", {w.hash: 256})
        d.produced("t", _request(_msg(64, 25).hash), {w.hash: 0})
        d.called("t", [w.hash])
        store.kept.write_many("t", [], [w.hash])
        d.sweep_once()
        d.sweep_once()
        assert behind.flush() and store.kept.used("t") == 0
        assert not d.pending("t", w.hash) and not store.redis.exists(keys.kept_key("t", w.hash))
    finally:
        d.close()
