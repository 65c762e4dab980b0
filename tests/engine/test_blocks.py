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


def _run(nodes, targets, arrays):
    g, t = engine.build(nodes, targets)
    lowered, lt = engine.lower(g, t)
    return engine.run(lowered, lt, arrays.__getitem__, np)


def _leaves(arrays):
    return [WireNode(i, "leaf", (), {"hash": k, "dtype": str(a.dtype), "shape": a.shape})
            for i, (k, a) in enumerate(arrays.items())]


def _counting(monkeypatch, name):
    """Calls of blocks.`name` (a block builder) from now on, by op or equation."""
    made, real = [], getattr(blocks, name)

    def spy(fn, *a):
        made.append(a[-1] if name == "_einsum_pairs" else a[1] if name == "_by_batch"
                    else name)
        return real(fn, *a)
    monkeypatch.setattr(blocks, name, spy)
    return made


@pytest.mark.parametrize("attrs", [{}, {"stride": 2, "padding": 1},
                                   {"groups": 2, "dilation": 2}])
def test_conv2d_input_grad_in_batch_blocks_gives_the_whole_ones_values(monkeypatch, attrs):
    """x's gradient of a gradient (its second-order graph runs conv2d_input_grad, whose
    input_shape attribute is bound again for each block of the batch)."""
    rng = np.random.default_rng(2)
    groups = attrs.get("groups", 1)
    arrays = {"x": rng.standard_normal((7, 4, 9, 9)).astype(np.float32),
              "w": rng.standard_normal((6, 4 // groups, 3, 3)).astype(np.float32)}
    nodes = _leaves(arrays) + [
        WireNode(2, "conv2d", (0, 1), attrs),
        WireNode(3, "sum", (2,), {"dim": None, "keepdim": False}),
        WireNode(4, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
        WireNode(5, "grad", (3, 4, 1), {"n": 1}),   # d sum / dw: conv2d_weight_grad(x, 1)
        WireNode(6, "mul", (5, 5), {}),
        WireNode(7, "sum", (6,), {"dim": None, "keepdim": False}),
        WireNode(8, "grad", (7, 4, 0), {"n": 1})]   # through it: conv2d_input_grad
    whole = _run(nodes, [2, 5, 8], arrays)
    monkeypatch.setattr(blocks, "BLOCK_FLOPS", 2000)
    made = _counting(monkeypatch, "_input_grad_by_batch")
    parts = _run(nodes, [2, 5, 8], arrays)
    assert made, "conv2d_input_grad did not run in blocks"
    for a, b in zip(whole, parts):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,attrs", [
    ((6, 3, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 5, 9, 8), {"kernel_size": 2, "ceil_mode": True}),       # batch of 1: channels
    ((4, 9, 8), {"kernel_size": (2, 3), "stride": 1, "dilation": (2, 1)})])  # unbatched
def test_max_pool2d_and_its_gradients_in_blocks_are_exactly_the_whole_ones(
        monkeypatch, shape, attrs):
    """max_pool2d, max_pool2d_backward (its gradient) and max_pool2d_select (the gradient's
    gradient) pool every plane alone: blocks give the very same values."""
    rng = np.random.default_rng(3)
    arrays = {"x": rng.standard_normal(shape).astype(np.float32)}
    nodes = _leaves(arrays) + [
        WireNode(1, "max_pool2d", (0,), attrs),
        WireNode(2, "mul", (1, 1), {}),
        WireNode(3, "sum", (2,), {"dim": None, "keepdim": False}),
        WireNode(4, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
        WireNode(5, "grad", (3, 4, 0), {"n": 1}),          # max_pool2d_backward
        WireNode(6, "mul", (5, 5), {}),
        WireNode(7, "sum", (6,), {"dim": None, "keepdim": False}),
        WireNode(8, "grad", (7, 4, 0), {"n": 1})]          # max_pool2d_select inside
    whole = _run(nodes, [1, 5, 8], arrays)
    monkeypatch.setattr(blocks, "BLOCK_FLOPS", 300)
    made = _counting(monkeypatch, "_by_plane")
    parts = _run(nodes, [1, 5, 8], arrays)
    assert len(made) >= 3, made  # the pool, its backward and the select
    for a, b in zip(whole, parts):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(b, a)


EINSUMS = [("ij,jk->ik", [(37, 20), (20, 11)]), ("bij,bjk->bik", [(3, 17, 8), (3, 8, 9)]),
           ("ab,bc,c->a", [(13, 7), (7, 9), (9,)]), ("ij,ij->ij", [(1, 13), (9, 13)]),
           ("...ij,...jk", [(2, 1, 13, 4), (5, 4, 7)]), ("ii->i", [(9, 9)]),
           ("jii,i->j", [(7, 9, 9), (9,)]), ("i,j->ij", [(23,), (17,)]),
           ("abc,cd,de->ae", [(5, 6, 7), (7, 8), (8, 9)]), ("ij,kj->ik", [(1, 30), (25, 30)]),
           ("a,b,c,d->", [(6,), (7,), (8,), (9,)])]


@pytest.mark.parametrize("equation,shapes", EINSUMS)
def test_einsum_pair_by_pair_in_blocks_gives_numpys_values(monkeypatch, equation, shapes):
    """An einsum over the bound runs numpy's greedy path one pair at a time, a long pair
    in blocks of a result letter: numpy's values (up to BLAS's kernel for small blocks)."""
    rng = np.random.default_rng(4)
    arrays = {f"e{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    nodes = _leaves(arrays) + [WireNode(20, "einsum", tuple(range(len(shapes))),
                                        {"equation": equation})]
    want = np.einsum(equation, *arrays.values(), optimize="greedy")
    monkeypatch.setattr(blocks, "BLOCK_FLOPS", 300)
    made = _counting(monkeypatch, "_einsum_pairs")
    (got,) = _run(nodes, [20], arrays)
    assert made == [equation] or (want.size * 2 <= 300 and not made), made
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
