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

from remotegrad.proto.catalog import attrs_key
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


def by_structure(targets: list[Node]) -> tuple[tuple | None, list]:
    """The structure key of the graph by_identity builds (the engine's `structure`, and
    the same node order), and its leaves' arrays in first-occurrence order, in one walk
    and without building the graph: a structure the engine has planned needs no more.
    None for a key that cannot be hashed (the engine then says what is wrong).

    The walk recurses (a Python call a node costs less than an explicit stack's pushes
    and pops: an 8-node graph 14.6 -> 9.3 us, a 106-node one 219 -> 155 us) down to
    DEPTH; a deeper graph (a long lazy loop) is walked again with the explicit stack."""
    pos: dict[Node, int] = {}  # nodes are their own keys (identity hash, no __eq__): no id()
    key: list[tuple] = []
    arrays: list = []
    add = key.append

    def visit(node: Node, depth: int) -> None:
        """`node` after every input it needs (walk()'s order, node for node)."""
        if (node.value is not None or node.hash is not None) and (
                node.op == "leaf" or not node.tracked):  # travels_as_leaf, inlined
            pos[node] = len(key)
            meta = node.meta
            add(("leaf", len(arrays), meta.dtype, meta.shape, None))
            arrays.append(node.value)
            return
        if depth > DEPTH:
            raise _TooDeep
        inputs = node.inputs
        for i in inputs:
            if i not in pos:
                if (i.value is not None or i.hash is not None) and (
                        i.op == "leaf" or not i.tracked):  # a leaf here: no call for it
                    pos[i] = len(key)
                    meta = i.meta
                    add(("leaf", len(arrays), meta.dtype, meta.shape, None))
                    arrays.append(i.value)
                else:
                    visit(i, depth + 1)
        pos[node] = len(key)
        # one or two inputs (most ops) without a comprehension: on Python 3.11 each is a
        # call of its own, ~0.2 us a node
        n = len(inputs)
        if n == 1:
            where = (pos[inputs[0]],)
        elif n == 2:
            where = (pos[inputs[0]], pos[inputs[1]])
        else:
            where = tuple([pos[i] for i in inputs])
        if node.attrs:
            akey = node.akey
            if akey is None:
                akey = node.akey = attrs_key(node.attrs)
            add((node.op, where, akey))
        else:
            add((node.op, where))

    try:
        for t in targets:
            if t not in pos:
                visit(t, 0)
    except (_TooDeep, RecursionError):  # the latter: a caller already deep in the stack
        pos, key, arrays = _stacked(targets)
    finally:
        # visit's closure holds visit itself: left bound, that cycle would keep pos (every
        # node walked, and with them their arrays) alive until the garbage collector ran
        visit = None
    try:
        out = StructureKey((tuple(key), tuple([pos[t] for t in targets])))
    except TypeError:  # unhashable
        return None, arrays
    return out, arrays


class StructureKey(tuple):
    """A structure key that hashes once: a deep tuple's hash is not cached, and a plan
    lookup hashes its key twice (the LRU's get and move_to_end), ~2 us each for a
    dynamic-net step's 54 nodes. Equal to, and hashed as, the plain tuple (the engine's
    own `structure()`)."""

    def __new__(cls, items: tuple) -> StructureKey:
        self = tuple.__new__(cls, items)
        self._hash = tuple.__hash__(self)  # TypeError for an unhashable attribute
        return self

    def __hash__(self) -> int:
        return self._hash


DEPTH = 400  # inside Python's recursion limit (1000) for a caller less deep than 600


class _TooDeep(Exception):
    pass


def _stacked(targets: list[Node]) -> tuple[dict, list, list]:
    """by_structure's walk with an explicit stack, for a graph of any depth: (positions,
    key entries, leaf arrays)."""
    pos: dict[Node, int] = {}
    key: list[tuple] = []
    arrays: list = []
    add = key.append
    stack: list[tuple[Node, bool]] = [(t, False) for t in reversed(targets)]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:  # walk()'s order, node for node (the arrays' order is the plan's)
        node, ready = pop()
        if node in pos:
            continue
        if ready:
            pos[node] = len(key)
            inputs = tuple([pos[i] for i in node.inputs])
            if node.attrs:
                akey = node.akey
                if akey is None:
                    akey = node.akey = attrs_key(node.attrs)
                add((node.op, inputs, akey))
            else:
                add((node.op, inputs))
        elif (node.value is not None or node.hash is not None) and (
                node.op == "leaf" or not node.tracked):  # travels_as_leaf, inlined
            pos[node] = len(key)
            meta = node.meta
            add(("leaf", len(arrays), meta.dtype, meta.shape, None))
            arrays.append(node.value)
        else:
            push((node, True))
            extend([(i, False) for i in reversed(node.inputs) if i not in pos])
    return pos, key, arrays
