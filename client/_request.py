"""From lazy nodes to the engine's graph: one walk, two ways of naming leaves.

A node travels as a `leaf` when its value is known here, or held by the cluster (its
hash), unless it lies on an autograd path whose history a gradient needs (`tracked`).

- In this process (`connect("local")`) a leaf is named by its identity: its position among
  the graph's leaves. The engine gets the arrays themselves; nothing is hashed or copied.
- Over the network (_remote.build_request) a leaf is named by its content hash. Small leaves
  travel inline; large ones are streamed up once beforehand; leaves the cluster holds
  travel as their hash alone. Equal bytes in distinct tensors are distinct leaves (a tag).
"""

from __future__ import annotations

from collections.abc import Callable

from remotegrad.proto.nodes import WireNode

from ._node import Node

LeafAttrs = Callable[[Node], dict]


def travels_as_leaf(node: Node) -> bool:
    known = node.value is not None or node.hash is not None
    return known and (node.op == "leaf" or not node.tracked)


def walk(targets: list[Node], leaf_attrs: LeafAttrs) -> tuple[list[WireNode], list[int]]:
    """The graph the targets need, inputs before users, each node once; a travelling leaf's
    attributes from `leaf_attrs(node)`. Returns the nodes and the targets' ids."""
    ids: dict[int, int] = {}
    nodes: list[WireNode] = []
    stack: list[tuple[Node, bool]] = [(t, False) for t in reversed(targets)]
    while stack:
        node, ready = stack.pop()
        if id(node) in ids:
            continue
        if travels_as_leaf(node):
            ids[id(node)] = len(nodes)
            nodes.append(WireNode(len(nodes), "leaf", (), leaf_attrs(node)))
        elif ready:
            ids[id(node)] = len(nodes)
            nodes.append(WireNode(len(nodes), node.op, tuple([ids[id(i)] for i in node.inputs]),
                                  node.attrs))
        else:
            stack.append((node, True))
            stack.extend((i, False) for i in reversed(node.inputs) if id(i) not in ids)
    return nodes, [ids[id(t)] for t in targets]


def by_identity(targets: list[Node]) -> tuple[list[WireNode], list[int], list]:
    """The graph for the engine in this process, and its leaves' arrays: leaf k is named
    "k" (the engine's plans are keyed by where names first occur, not by the names)."""
    arrays: list = []

    def attrs(node: Node) -> dict:
        arrays.append(node.value)
        return {"hash": str(len(arrays) - 1), "dtype": node.meta.dtype,
                "shape": node.meta.shape}

    nodes, ids = walk(targets, attrs)
    return nodes, ids, arrays
