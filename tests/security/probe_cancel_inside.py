"""Probe for RELIABILITY.md's cost row (not a test): how long one long op goes on after
its call is cancelled, with the engine's blocks (worker/engine/blocks.py) and without
(BLOCK_FLOPS set to infinity), in process, with the worker's own Cancellation.

    .venv/bin/python tests/security/probe_cancel_inside.py OP [whole|blocks] [SECONDS]

OP: einsum (7168² by 7168²), input_grad (conv2d_input_grad, 1.7e11 operations), pool,
poolgrad, poolsel (max_pool2d and its two gradients over 8×16×256×256, 7×7 windows).
The op is cancelled SECONDS (default 1) after it starts; prints when it stopped.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from remotegrad.proto.codec import WireNode
from remotegrad.worker import engine
from remotegrad.worker.compute import CallCancelled, Cancellation
from remotegrad.worker.engine import blocks, cost

ONE = WireNode(90, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"})
POOL = {"kernel_size": 7, "stride": 1, "padding": 3}


def _leaves(arrays):
    return [WireNode(i, "leaf", (), {"hash": k, "dtype": "float32", "shape": a.shape})
            for i, (k, a) in enumerate(arrays.items())]


def graph(name: str):
    r = np.random.default_rng(0)
    if name == "einsum":
        a = {k: r.standard_normal((7168, 7168), dtype=np.float32) for k in "ab"}
        return a, _leaves(a) + [WireNode(5, "einsum", (0, 1), {"equation": "ij,jk->ik"})], [5]
    if name == "input_grad":
        a = {"w": r.standard_normal((1152, 128, 3, 3), dtype=np.float32)}
        return a, _leaves(a) + [
            WireNode(1, "full", (), {"shape": (16, 1152, 64, 64), "value": 1.0,
                                     "dtype": "float32"}),
            WireNode(2, "conv2d_input_grad", (1, 0),
                     {"input_shape": (16, 128, 64, 64), "padding": 1})], [2]
    a = {"x": r.standard_normal((8, 16, 256, 256), dtype=np.float32)}
    if name == "poolsel":
        a["h"] = a["x"] * 2
        return a, _leaves(a) + [WireNode(2, "max_pool2d_select", (1, 0), POOL)], [2]
    nodes = _leaves(a) + [WireNode(1, "max_pool2d", (0,), POOL)]
    if name == "pool":
        return a, nodes, [1]
    return a, nodes + [WireNode(2, "sum", (1,), {"dim": None, "keepdim": False}), ONE,
                       WireNode(5, "grad", (2, 90, 0), {"n": 1})], [5]


def main() -> None:
    name = sys.argv[1]
    whole = "whole" in sys.argv[2:]
    after = float(next((a for a in sys.argv[2:] if a not in ("whole", "blocks")), 1.0))
    if whole:
        blocks.BLOCK_FLOPS = float("inf")
    arrays, nodes, targets = graph(name)
    g, t = engine.lower(*engine.build(nodes, targets))
    cancel, out = Cancellation(), {}

    def work():
        try:
            cancel.run(lambda: engine.run(g, t, arrays.__getitem__, np))
            out["end"] = "finished"
        except CallCancelled:
            out["end"] = "cancelled"
        out["at"] = time.monotonic()

    thread = threading.Thread(target=work)
    start = time.monotonic()
    thread.start()
    thread.join(after)
    cancelled = time.monotonic()
    cancel.cancel()
    thread.join()
    print(f"{name} ({cost.graph_flops(g, t):.2e} operations, "
          f"{'whole' if whole else 'in blocks'}): {out['end']}, stopped "
          f"{out['at'] - cancelled:.2f} s after the cancellation ({cancelled - start:.2f} s in)")


if __name__ == "__main__":
    main()
