"""The worker's compute(): a ComputeRequest in, a ComputeResponse out (no server)."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import codec
from remotegrad.worker.compute import MemoryTensorStore, compute


def _wire(a, b, scale):
    ha, hb = codec.array_hash(a), codec.array_hash(b)
    return [codec.WireNode(10, "leaf", (), {"hash": ha, "dtype": a.dtype.name, "shape": a.shape}),
            codec.WireNode(11, "leaf", (), {"hash": hb, "dtype": b.dtype.name, "shape": b.shape}),
            codec.WireNode(12, "const", (), {"value": scale}),
            codec.WireNode(13, "matmul", (10, 11), {}),
            codec.WireNode(14, "mul", (13, 12), {}),
            codec.WireNode(15, "sum", (14,), {})]


def test_compute_request_round_trip():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((3, 2), np.float32)
    nodes = _wire(a, b, 0.5)
    req = codec.encode_request(nodes, [codec.encode_array(a), codec.encode_array(b)], [15, 13])
    resp = compute(req, MemoryTensorStore())
    total, prod = codec.decode_response(resp)
    np.testing.assert_allclose(prod, a @ b)
    assert total.dtype == np.float32 and float(total) == pytest.approx(0.5 * (a @ b).sum())


def test_kept_results_stay_with_the_worker_under_their_hash():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((3, 2), np.float32)
    req = codec.encode_request(_wire(a, b, 0.5), [codec.encode_array(a), codec.encode_array(b)],
                               [15, 13])
    req.keep.append(13)
    store = MemoryTensorStore()
    total, prod = compute(req, store).results
    assert not total.hash  # a transient result is not hashed
    assert prod.hash == codec.array_hash(a @ b)
    held = store.get("default", prod.hash)
    np.testing.assert_array_equal(codec.decode_array(held, verify_hash=True), a @ b)
    # The next request names it by hash alone and needs no bytes.
    nxt = codec.encode_request([codec.WireNode(0, "leaf", (), {
        "hash": prod.hash, "dtype": "float32", "shape": (2, 2)}), codec.WireNode(
        1, "sum", (0,), {})], [], [1])
    (again,) = codec.decode_response(compute(nxt, store))
    assert float(again) == pytest.approx(float((a @ b).sum()))
