"""Long products run in row blocks (worker/engine/blocks.py) give the unblocked values."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto.codec import WireNode
from remotegrad.worker import engine
from remotegrad.worker.engine import blocks

CASES = [("mm", [(37, 20), (20, 11)]), ("matmul", [(2, 37, 20), (20, 11)]),
         ("matmul", [(37, 20), (3, 20, 11)]), ("matmul", [(37, 20), (20,)]),
         ("bmm", [(3, 37, 20), (3, 20, 11)]), ("linear", [(4, 37, 20), (11, 20), (11,)]),
         ("linear", [(37, 20), (11, 20)])]


@pytest.mark.parametrize("op,shapes", CASES)
def test_blocked_products_equal_the_whole_ones(monkeypatch, op, shapes):
    monkeypatch.setattr(blocks, "BLOCK_FLOPS", 500)  # blocks of a few rows
    rng = np.random.default_rng(0)
    arrays = {f"b{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    nodes = [WireNode(i, "leaf", (), {"hash": f"b{i}", "dtype": "float32", "shape": s})
             for i, s in enumerate(shapes)]
    nodes.append(WireNode(9, op, tuple(range(len(shapes))), {}))
    g, t = engine.build(nodes, [9])
    (got,) = engine.run(g, t, arrays.__getitem__, np)
    a = list(arrays.values())
    want = a[0] @ a[1].T + (a[2] if len(a) > 2 else 0) if op == "linear" else a[0] @ a[1]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    def whole(*arrays):
        return arrays[0]
    rows = len(shapes[0]) >= 2 and len(want.shape) >= 2  # a product by a vector stays whole
    assert (blocks.blocked(whole, np, op, 10_000, shapes[0], want.shape) is not whole) == rows
