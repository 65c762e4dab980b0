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


def _conv_grads(arrays, attrs):
    """conv2d's value and its gradients (the weight's by conv2d_weight_grad)."""
    x, w, b = (np.asarray(arrays[k]) for k in ("x", "w", "b"))
    leaf = [WireNode(i, "leaf", (), {"hash": k, "dtype": "float32", "shape": a.shape})
            for i, (k, a) in enumerate((("x", x), ("w", w), ("b", b)))]
    nodes = leaf + [WireNode(3, "conv2d", (0, 1, 2), attrs),
                    WireNode(4, "sum", (3,), {"dim": None, "keepdim": False}),
                    WireNode(5, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
                    WireNode(6, "grad", (4, 5, 0), {"n": 1}),
                    WireNode(7, "grad", (4, 5, 1), {"n": 1})]
    g, t = engine.build(nodes, [3, 6, 7])
    lowered, lt = engine.lower(g, t)
    return engine.run(lowered, lt, arrays.__getitem__, np)


@pytest.mark.parametrize("attrs", [{}, {"stride": 2, "padding": 1},
                                   {"groups": 2, "dilation": 2}])
def test_a_conv2d_in_batch_blocks_gives_the_whole_ones_values(monkeypatch, attrs):
    rng = np.random.default_rng(1)
    arrays = {"x": rng.standard_normal((7, 4, 9, 9)).astype(np.float32),
              "w": rng.standard_normal((6, 4 // attrs.get("groups", 1), 3, 3)
                                       ).astype(np.float32),
              "b": rng.standard_normal(6).astype(np.float32)}
    whole = _conv_grads(arrays, attrs)
    monkeypatch.setattr(blocks, "BLOCK_FLOPS", 2000)  # a block per image or two
    made = []
    by_batch = blocks._by_batch
    monkeypatch.setattr(blocks, "_by_batch", lambda fn, xp, op, *a: made.append(op) or
                        by_batch(fn, xp, op, *a))
    parts = _conv_grads(arrays, attrs)
    assert {"conv2d", "conv2d_weight_grad"} <= set(made), made
    for a, b in zip(whole, parts):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-4)
