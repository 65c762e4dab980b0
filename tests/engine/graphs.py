"""Graphs more than one engine test (and bench/gpu_overhead.py) runs: a long elementwise
chain with its gradient, and an MLP training step."""

from __future__ import annotations

import numpy as np

from .helpers import EngineGraph

# A 100-op chain that keeps values finite: squashing ops between affine ones.
CHAIN = ["tanh", ("mul", 1.5), "sin", ("add", 0.25), "sigmoid", "relu", ("sub", 0.5),
         "abs", "exp", "reciprocal"]


def chain_graph(n: int = 100, size: int = 4096, dtype: str = "float32"):
    """x → n elementwise ops → v; and d(sum v)/dx. Returns (graph, x, v, grad)."""
    eg = EngineGraph()
    x = eg.leaf(np.random.default_rng(0).uniform(-1, 1, size).astype(dtype))
    v = x
    for k in range(n):
        op = CHAIN[k % len(CHAIN)]
        if isinstance(op, tuple):
            v = eg.g.add(op[0], (v, eg.g.add("const", (), {"value": op[1]})))
        else:
            v = eg.g.add(op, (v,))
    one = eg.g.add("full", (), {"shape": (), "value": 1.0, "dtype": dtype})
    grad = eg.g.add("grad", (eg.g.add("sum", (v,)), one, x), {"n": 1})
    return eg, x, v, grad


def mlp_graph(batch=64, sizes=(32, 64, 64, 10)):
    """Linear-ReLU-linear-ReLU-linear, cross entropy; the loss and six gradients."""
    rng = np.random.default_rng(0)
    eg = EngineGraph()
    h = eg.leaf(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    params = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        w = eg.leaf((rng.standard_normal((fan_out, fan_in)) / fan_in ** 0.5).astype(np.float32))
        b = eg.leaf(rng.standard_normal(fan_out).astype(np.float32) * 0.1)
        params += [w, b]
        h = eg.g.add("linear", (h, w, b))
        if k < len(sizes) - 2:
            h = eg.g.add("relu", (h,))
    y = eg.leaf(rng.integers(0, sizes[-1], batch).astype(np.int64))
    loss = eg.g.add("cross_entropy", (h, y))
    one = eg.g.add("full", (), {"shape": (), "value": 1.0, "dtype": "float32"})
    grads = [eg.g.add("grad", (loss, one, p), {"n": 1}) for p in params]
    return eg, [loss, *grads]
