"""A worker holds kept results under their provenance names (worker/held.py) and answers
them by reference: no bytes in the answer, nothing hashed; held results not yet written
to their durable copies are never evicted."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import codec, keys
from remotegrad.proto.codec import WireNode
from remotegrad.proto.store import MemoryTensorStore
from remotegrad.worker.compute import compute
from remotegrad.worker.held import Held, WorkerStore


def _value(n: int = 256) -> np.ndarray:
    return np.arange(n, dtype=np.float32)


def test_a_kept_result_is_held_under_its_name_and_answered_without_bytes():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    h = codec.array_hash(a)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (3, 4)}),
             WireNode(1, "mul", (0, 0), {}), WireNode(2, "sum", (1,), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a, h)], [2, 1])
    req.keep.append(1)
    name = keys.kept_name("the call", 1)
    req.keep_as.append(name)
    store = WorkerStore(MemoryTensorStore(), Held())
    resp = compute(req, store, "t")
    kept = resp.results[1]
    assert kept.hash == name and not kept.data
    assert kept.dtype == "float32" and list(kept.shape) == [3, 4]
    assert float(codec.decode_array(resp.results[0])) == float((a * a).sum())
    np.testing.assert_array_equal(store.array("t", name), a * a)
    assert store.array("u", name) is None  # another tenant's


def test_unwritten_results_are_pinned_written_ones_evicted_first_released_dropped():
    held = Held(max_bytes=1 << 20)
    pinned, written = keys.kept_name("pinned", 0), keys.kept_name("written", 0)
    held.keep("t", pinned, _value(), pinned=True)
    held.keep("t", written, _value(), pinned=True)
    held.written("t", written)  # its copy landed: an ordinary cache entry now
    held.shrink(0)
    assert held.get("t", pinned) is not None and held.get("t", written) is None
    held.release("t", [pinned])
    assert held.get("t", pinned) is None and held.nbytes() == 0


def test_without_names_kept_results_are_content_named_and_answered_with_bytes():
    """A cluster without a shared store (no keep_as): the gateway's store is the only
    copy, so the bytes travel, named by content hash."""
    a = np.ones(4, dtype=np.float32)
    h = codec.array_hash(a)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (4,)}),
             WireNode(1, "neg", (0,), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a, h)], [1])
    req.keep.append(1)
    resp = compute(req, MemoryTensorStore(), "t")
    assert resp.results[0].hash == codec.array_hash(-a) and resp.results[0].data


def test_a_call_keeping_a_dtype_that_cannot_be_kept_holds_none_of_its_results():
    """Checked before any is held: one held (pinned) with no copy to write would stay."""
    held = Held()
    store = WorkerStore(MemoryTensorStore(), held)
    good, bad = keys.kept_name("c", 0), keys.kept_name("c", 1)
    with pytest.raises(codec.OpError, match="cannot be kept"):
        store.keep("t", {good: _value(), bad: np.zeros(2, dtype=np.complex64)})
    assert held.get("t", good) is None and held.nbytes() == 0


class FlakyCopies:
    """Durable copies whose first `fail` writes raise `error`; what was written after."""

    def __init__(self, fail: int, error: Exception) -> None:
        self.fail, self.error, self.written, self.skipped = fail, error, {}, []

    def write_many(self, tenant, copies, skipped=()):
        if self.fail:
            self.fail -= 1
            raise self.error
        for name, dtype, shape, data in copies:
            self.written[(tenant, name)] = np.frombuffer(bytes(data), dtype).reshape(shape)
        self.skipped += [(tenant, name) for name in skipped]


def _durable_store(copies, retry_first: float):
    from remotegrad.proto.write_behind import WriteBehind
    store = WorkerStore(MemoryTensorStore(), Held(), copies, WriteBehind())
    store.RETRY_FIRST = retry_first
    return store


def test_keeping_again_a_name_whose_copy_failed_writes_it_at_once():
    """Its first write refused (this call only), the name stays pinned; the same call
    keeping it again queues its copy again (it was held already, so nothing was queued
    and only a retry, if any, could write it)."""
    copies = FlakyCopies(1, RuntimeError("NOPERM this user has no permissions"))
    store = _durable_store(copies, retry_first=3600.0)  # no retry within the test
    name = keys.kept_name("again", 0)
    store.keep("t", {name: _value()})
    assert store.behind.flush() and copies.written == {}
    store.held.shrink(0)
    assert store.array("t", name) is not None  # pinned: the only copy there is
    store.keep("t", {name: _value()})
    assert store.behind.flush()
    np.testing.assert_array_equal(copies.written[("t", name)], _value())
    store.held.shrink(0)
    assert store.held.get("t", name) is None  # written: evictable now


def test_a_copy_whose_write_failed_is_written_again_until_it_lands():
    """Redis unreachable for the first three writes (the breaker opens): the copy is
    tried again later by itself, with no further call, and lands; then the entry is an
    ordinary (evictable) cache entry. A copy released before it is written is marked
    skipped instead, the retry's too (the gateway then makes the release)."""
    from procs import wait_until
    copies = FlakyCopies(3, ConnectionError("Connection refused"))
    store = _durable_store(copies, retry_first=0.05)
    name, gone = keys.kept_name("retried", 0), keys.kept_name("released", 0)
    store.keep("t", {name: _value(), gone: _value(8)})
    store.release("t", [gone])
    wait_until(lambda: ("t", name) in copies.written, "the copy written again", timeout=20)
    np.testing.assert_array_equal(copies.written[("t", name)], _value())
    assert ("t", gone) not in copies.written and copies.skipped == [("t", gone)]
    store.held.shrink(0)
    assert store.held.get("t", name) is None  # written: evictable now
    assert store._failed == {} and store._tries == {}


def test_copies_released_before_their_write_began_are_marked_skipped_four_calls_running():
    """The write thread busy, six calls each keep w_i and release w_(i-1) (a training
    step): when the thread comes to them, the copies of w_1..w_5 are not written but
    marked skipped, except that at most four calls' in a row are skipped (the gateway
    recomputes through skipped ones: a chain no longer than that); the newest is
    written. Into a real Redis: the marks are absent to readers, landed() tells them."""
    import shutil
    import subprocess
    import threading

    from procs import free_port, stop, wait_until
    from remotegrad.proto.kept import KeptCopies
    from remotegrad.proto.write_behind import WriteBehind
    import redis
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        wait_until(r.ping, "redis-server", procs=[proc])
        copies = KeptCopies(r)
        store = WorkerStore(MemoryTensorStore(), Held(), copies, WriteBehind())
        busy = threading.Event()
        store.behind.later(lambda: busy.wait(30))
        names = [keys.kept_name(f"step{i}", 0) for i in range(7)]
        store.keep("t", {names[0]: _value()})
        for i in range(1, 7):
            store.release("t", [names[i - 1]])
            store.keep("t", {names[i]: _value() + i})
        busy.set()
        assert store.behind.flush()
        landed = copies.landed("t", names)
        # w0..w3 skipped, w4 written (four in a row), w5 skipped, w6 (held) written
        assert landed == {names[0]: False, names[1]: False, names[2]: False,
                          names[3]: False, names[4]: True, names[5]: False, names[6]: True}
        assert copies.missing("t", names) == [names[i] for i in (0, 1, 2, 3, 5)]
        assert copies.get("t", names[0]) is None
        np.testing.assert_array_equal(codec.decode_array(copies.get("t", names[6])),
                                      _value() + 6)
    finally:
        stop(proc)


class DownCopies(FlakyCopies):
    """Durable copies with Redis unreachable while `down`."""

    def __init__(self) -> None:
        super().__init__(0, ConnectionError("Connection refused"))
        self.down = True

    def write_many(self, tenant, copies, skipped=()):
        if self.down:
            raise self.error
        super().write_many(tenant, copies, skipped)


def test_failed_copies_keep_no_bytes_of_released_names_through_an_outage():
    """Redis down while a training loop goes on (calls run without it): each step keeps
    w_i and releases w_(i-1), whose failed copy waits to be tried again. A released name's
    copy is only to be marked skipped (the gateway's lineage covers it), so its bytes are
    not kept for the retry: before, every released step's parameters stayed in memory
    (counted nowhere) until their 14th failed try, minutes later. Once Redis is back, the
    retry writes the held one and marks the released ones skipped."""
    copies = DownCopies()
    store = _durable_store(copies, retry_first=3600.0)  # retried below, by hand
    store._breaker.RETRY_AFTER = 0.0  # each try reaches the store
    names = [keys.kept_name(f"step{i}", 0) for i in range(10)]
    store.keep("t", {names[0]: _value()})
    for i in range(1, 10):
        assert store.behind.flush()
        store.release("t", [names[i - 1]])
        store.keep("t", {names[i]: _value() + i})
    assert store.behind.flush() and copies.written == {}
    retained = [n for n, v in store._failed["t"].items() if isinstance(v, np.ndarray)]
    assert retained == [names[-1]]  # the held one's bytes only
    copies.down = False
    store._retry("t")
    np.testing.assert_array_equal(copies.written[("t", names[-1])], _value() + 9)
    assert len(copies.written) == 1
    assert sorted(copies.skipped) == sorted(("t", n) for n in names[:-1])
    assert store._failed == {} and store._tries == {}


def test_released_copies_are_given_up_after_retries_not_after_other_calls_failures():
    """RELEASED_TRIES counts the tries again (1, 2, 4 ... 30 s apart: about 5 minutes),
    not every call's write that failed meanwhile: twenty training steps in a short
    outage are one try. Before, the twentieth step's failure gave up the released
    names' copies at the first retry: never marked skipped, the gateway kept their
    lineage and ledger bytes (counted in the quota) until its lineage bound."""
    copies = DownCopies()
    store = _durable_store(copies, retry_first=3600.0)  # retried below, by hand
    store._breaker.RETRY_AFTER = 0.0
    names = [keys.kept_name(f"outage{i}", 0) for i in range(20)]
    store.keep("t", {names[0]: _value()})
    for i in range(1, 20):
        assert store.behind.flush()
        store.release("t", [names[i - 1]])
        store.keep("t", {names[i]: _value() + i})
    assert store.behind.flush() and store._tries == {"t": 1}
    copies.down = False
    store._retry("t")
    assert list(copies.written) == [("t", names[-1])]
    assert sorted(copies.skipped) == sorted(("t", n) for n in names[:-1])
