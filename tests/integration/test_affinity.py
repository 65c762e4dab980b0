"""Routing follows the state: a call that names tensors a worker kept goes to that
worker (which then reads no shared store), not round the pool."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import codec
from remotegrad.proto.codec import WireNode

pytestmark = pytest.mark.integration


def _step(w: WireNode, x: np.ndarray):
    """w' = w + x, kept; and sum(w') returned."""
    hx = codec.array_hash(x)
    nodes = [w, WireNode(1, "leaf", (), {"hash": hx, "dtype": "float32", "shape": x.shape}),
             WireNode(2, "add", (0, 1), {}), WireNode(3, "sum", (2,), {"dim": None,
                                                                     "keepdim": False})]
    inline = [codec.encode_array(x, hx)]
    if "data" in w.attrs:
        inline.append(w.attrs.pop("data"))
    req = codec.encode_request(nodes, inline, [2, 3])
    req.keep.append(2)
    return req


def test_a_kept_tensors_next_step_goes_to_its_worker(cluster):
    stub = cluster.stub()
    assert len(cluster.status().workers) == 2
    rng = np.random.default_rng(7)
    w0 = rng.standard_normal(8).astype(np.float32)
    w = WireNode(0, "leaf", (), {"hash": codec.array_hash(w0), "dtype": "float32",
                                 "shape": (8,), "data": codec.encode_array(w0)})
    value, where = w0, []
    for _ in range(8):
        x = rng.standard_normal(8).astype(np.float32)
        resp = stub.Compute(_step(w, x), timeout=20)
        kept, total = resp.results
        value = value + x
        assert kept.hash and not kept.data  # kept: answered by reference
        assert float(codec.decode_array(total)) == pytest.approx(float(value.sum()), rel=1e-5)
        where.append(resp.worker)
        w = WireNode(0, "leaf", (), {"hash": kept.hash, "dtype": "float32", "shape": (8,)})
    assert len(set(where[1:])) == 1, where  # round the pool would alternate
