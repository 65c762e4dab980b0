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
