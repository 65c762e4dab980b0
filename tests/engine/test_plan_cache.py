"""The plan cache is bounded by nodes as well as by plans (worker/engine/__init__.py):
a plan keeps ~3.7 KB per node after its call."""

from __future__ import annotations

from remotegrad.proto.codec import WireNode
from remotegrad.worker import engine


def _chain(n: int, op: str = "neg"):
    nodes = [WireNode(0, "leaf", (), {"hash": "x", "dtype": "float32", "shape": (1,)})]
    nodes += [WireNode(i, op, (i - 1,), {}) for i in range(1, n + 1)]
    return nodes, [n]


def test_the_plans_kept_hold_at_most_the_node_bound():
    cache = engine.Plans(size=256, nodes=1000)
    plans = [engine.Plan(*engine.build(*_chain(300 + k))) for k in range(5)]
    for k, p in enumerate(plans):
        cache.put(("chain", k), p)
    assert len(cache) == 3  # 301 + 302 + 303 + ... : the oldest out first
    assert cache.get(("chain", 0)) is None and cache.get(("chain", 4)) is plans[4]
    assert sum(len(cache.get(("chain", k)).graph) for k in (2, 3, 4)) <= 1000
    big = engine.Plan(*engine.build(*_chain(1500)))
    cache.put(("big",), big)  # larger than the bound: planned, never kept
    assert cache.get(("big",)) is None and len(cache) == 3
    cache.put(("chain", 4), plans[4])  # put again: counted once
    cache.clear()
    assert len(cache) == 0
