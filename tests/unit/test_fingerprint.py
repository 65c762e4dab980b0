"""A result's key depends on the computation, not on how the client numbered it."""

from __future__ import annotations

import random

from remotegrad.proto.codec import WireNode
from remotegrad.proto.provenance import fingerprint


def _graph(ids: list[int], c=2.0, leaf_hash="aa"):
    a, b, m, s = ids
    nodes = [WireNode(a, "leaf", (), {"hash": leaf_hash, "dtype": "float32", "shape": (3,)}),
             WireNode(b, "const", (), {"value": c}),
             WireNode(m, "mul", (a, b), {}),
             WireNode(s, "sum", (m,), {"dim": None, "keepdim": False})]
    return nodes, [s]


def test_renumbering_keeps_the_key():
    base = fingerprint(*_graph([0, 1, 2, 3]))
    for _ in range(20):
        ids = random.sample(range(1000), 4)
        assert fingerprint(*_graph(ids)) == base


def test_independent_nodes_in_another_order_keep_the_key():
    nodes, targets = _graph([0, 1, 2, 3])
    swapped = [nodes[1], nodes[0], nodes[2], nodes[3]]
    assert fingerprint(swapped, targets) == fingerprint(nodes, targets)


def test_values_types_and_leaf_bytes_change_the_key():
    base = fingerprint(*_graph([0, 1, 2, 3]))
    assert fingerprint(*_graph([0, 1, 2, 3], c=3.0)) != base
    assert fingerprint(*_graph([0, 1, 2, 3], c=2)) != base  # int 2 is not float 2.0
    assert fingerprint(*_graph([0, 1, 2, 3], leaf_hash="bb")) != base


def test_target_order_matters():
    nodes, _ = _graph([0, 1, 2, 3])
    assert fingerprint(nodes, [2, 3]) != fingerprint(nodes, [3, 2])


def test_a_tensor_differentiated_against_is_not_its_twin():
    """v1 = x*2, v2 = x*2, d(v1 + v2)/dv2 is 1; with v1 used twice, d(v1 + v1)/dv1 is 2:
    the same expressions, different answers, so different keys."""
    def graph(second):
        nodes = [WireNode(0, "leaf", (), {"hash": "aa", "dtype": "float32", "shape": ()}),
                 WireNode(1, "const", (), {"value": 2.0}),
                 WireNode(2, "mul", (0, 1), {}), WireNode(3, "mul", (0, 1), {}),
                 WireNode(4, "add", (2, second), {"alpha": 1}),
                 WireNode(5, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
                 WireNode(6, "grad", (4, 5, second), {"n": 1})]
        return nodes, [6]
    assert fingerprint(*graph(3)) != fingerprint(*graph(2))
