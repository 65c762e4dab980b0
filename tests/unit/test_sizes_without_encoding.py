"""Sizes that count a tensor message by its data's length, not by ByteSize(): upb encodes
the whole message to size it (a copy of the data and more, 95 us for a 200 KiB batch),
and a worker sized every step's batch that way twice (its memory estimate and its tensor
LRU's entry). What they count is the data's bytes (the leaf's copy the request keeps) and
the entry's fixed overhead, exactly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from remotegrad.proto import codec
from remotegrad.proto.store import ITEM_OVERHEAD, MemoryTensorStore
from remotegrad.worker import engine
from remotegrad.worker.backend import numpy_backend
from remotegrad.worker.compute import WorkerMemoryError, compute
from remotegrad.worker.estimate import of_plan


def _batch(n: int = 1000):
    x = np.linspace(0, 1, n, dtype=np.float32)
    h = codec.array_hash(x)
    nodes = [codec.WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (n,)}),
             codec.WireNode(1, "exp", (0,), {}),
             codec.WireNode(2, "sum", (1,), {"dim": None, "keepdim": False})]
    return nodes, codec.encode_request(nodes, [codec.encode_array(x, h)], [2]), x


def test_a_stored_tensor_counts_its_data_and_the_entry_overhead():
    _, req, x = _batch()
    store = MemoryTensorStore()
    store.put("t", req.tensors[0])
    assert store.nbytes() == x.nbytes + ITEM_OVERHEAD  # ByteSize's header bytes: no more
    store.shrink(0)
    assert store.nbytes() == 0


def test_the_memory_estimate_counts_the_requests_copy_of_a_leaf_as_its_data():
    """A worker whose limit is the plan's peak plus the leaf's bytes computes the graph;
    one byte less and it is refused (the estimate counted the message's encoding)."""
    nodes, req, x = _batch()
    peak = of_plan(engine.plan(nodes, [2])[0])[1] + x.nbytes
    fits = replace(numpy_backend, memory_limit=peak)
    (total,) = codec.decode_response(compute(req, MemoryTensorStore(), backend=fits))
    np.testing.assert_allclose(float(total), np.exp(x.astype(np.float64)).sum(), rtol=1e-5)
    tight = replace(numpy_backend, memory_limit=peak - 1)
    try:
        compute(req, MemoryTensorStore(), backend=tight)
    except WorkerMemoryError:
        pass
    else:
        raise AssertionError("admitted one byte over the limit")
