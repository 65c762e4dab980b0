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
