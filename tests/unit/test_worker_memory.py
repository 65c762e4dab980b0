"""A worker's memory budget in compute(), and the gateway pool's routing by it (no
processes: tests/integration/test_memory_limit.py runs the same against real ones)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from remotegrad.proto import codec
from remotegrad.proto.errors import NoWorkerFitsError
from remotegrad.server.pool import WorkerPool
from remotegrad.worker.backend import numpy_backend, select
from remotegrad.worker.compute import MemoryTensorStore, WorkerMemoryError, compute

MIB = 1 << 20


def exp_sum(n: int, value: float = 1.0):
    """sum(exp(x)) over a float32 leaf of n elements, sent inline: peak ≈ 8n bytes."""
    x = np.full(n, value, np.float32)
    h = codec.array_hash(x)
    nodes = [codec.WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (n,)}),
             codec.WireNode(1, "exp", (0,), {}),
             codec.WireNode(2, "sum", (1,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [2]), x


def huge():
    """exp() of a (2^24, 2^24) float32 broadcast: a 1 PiB allocation, which no machine
    makes (numpy raises MemoryError at once; the shapes themselves are valid)."""
    x = np.ones((1, 1), np.float32)
    h = codec.array_hash(x)
    nodes = [codec.WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (1, 1)}),
             codec.WireNode(1, "expand", (0,), {"shape": (1 << 24, 1 << 24)}),
             codec.WireNode(2, "exp", (1,), {}),
             codec.WireNode(3, "sum", (2,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [3])


class CountingStore(MemoryTensorStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, tenant, digest):
        self.calls.append("get")
        return super().get(tenant, digest)

    def put(self, tenant, msg):
        self.calls.append("put")
        return super().put(tenant, msg)


def test_a_graph_over_the_limit_is_refused_before_any_leaf_is_touched():
    moved = []
    small = replace(select("numpy", memory_limit=MIB),
                    to_device=lambda a: moved.append(a) or a)
    store = CountingStore()
    # 1 MiB leaf + 1 MiB exp, and the request's own copy of the inline leaf: about 3 MiB
    req, _ = exp_sum(MIB // 4)
    with pytest.raises(WorkerMemoryError) as err:
        compute(req, store, backend=small)
    msg = str(err.value)
    assert "needs about 3164160 bytes (3.0 MiB) at its peak" in msg  # the copy: its data
    assert "over this worker's memory limit of 1048576 bytes (1.0 MiB) (numpy)" in msg
    assert store.calls == [] and moved == []
    req, x = exp_sum(1000)  # fits
    (total,) = codec.decode_response(compute(req, store, backend=small))
    assert float(total) == pytest.approx(float(np.exp(x).sum()), rel=1e-6)


def test_out_of_memory_while_computing_is_a_clear_resource_error():
    with pytest.raises(WorkerMemoryError) as err:
        compute(huge(), MemoryTensorStore(), backend=numpy_backend)
    msg = str(err.value)
    assert "ran out of memory computing the graph (MemoryError" in msg
    assert "it needs about 2251799813709824 bytes (2.0 PiB) at its peak" in msg
    assert "this worker (numpy) has no memory limit set" in msg
    assert err.value.__context__ is None or err.value.__suppress_context__
    req, x = exp_sum(10)  # and the next call computes
    (total,) = codec.decode_response(compute(req, MemoryTensorStore()))
    assert float(total) == pytest.approx(float(np.exp(x).sum()), rel=1e-6)


def test_each_leaf_goes_to_the_device_once_per_call():
    x = np.arange(6, dtype=np.float32)
    h = codec.array_hash(x)
    meta = {"hash": h, "dtype": "float32", "shape": (6,)}
    nodes = [codec.WireNode(0, "leaf", (), meta),
             codec.WireNode(1, "leaf", (), {**meta, "tag": "again"}),
             codec.WireNode(2, "mul", (0, 1), {}),
             codec.WireNode(3, "sum", (2,), {"dim": None, "keepdim": False})]
    moved = []
    counting = replace(numpy_backend, to_device=lambda a: moved.append(a) or a)
    req = codec.encode_request(nodes, [codec.encode_array(x, h)], [3])
    (total,) = codec.decode_response(compute(req, MemoryTensorStore(), backend=counting))
    assert float(total) == float((x * x).sum())
    assert len(moved) == 1


def _pool(limits: dict[str, int]) -> WorkerPool:
    pool = WorkerPool(None, list(limits), refresh=3600)
    pool.refresh(force=True)
    for w in pool.snapshot():
        w.info = {"backend": "numpy", "memory_limit": limits[w.address]}
    return pool


def test_the_pool_routes_by_memory_limit_and_refuses_what_fits_nowhere():
    pool = _pool({"127.0.0.1:1": MIB, "127.0.0.1:2": 64 * MIB, "127.0.0.1:3": 0})
    try:
        for _ in range(6):
            w = pool.acquire(need=2 * MIB)
            assert w.address in ("127.0.0.1:2", "127.0.0.1:3")  # 0: no limit advertised
            pool.release(w)
        pool.check_fits(10**15)  # the unlimited worker admits anything
    finally:
        pool.close()
    pool = _pool({"127.0.0.1:1": MIB, "127.0.0.1:2": 64 * MIB})
    try:
        pool.check_fits(64 * MIB)
        with pytest.raises(NoWorkerFitsError) as err:
            pool.check_fits(64 * MIB + 1)
        assert "needs about 67108865 bytes (64.0 MiB)" in str(err.value)
        assert "largest worker memory limit is 67108864 bytes (64.0 MiB) (2 live workers)" \
            in str(err.value)
        with pytest.raises(NoWorkerFitsError):
            pool.acquire(need=100 * MIB)
        w = pool.acquire(need=2 * MIB)
        assert w.address == "127.0.0.1:2"
        pool.release(w)
    finally:
        pool.close()
