"""Client-side graph nodes: what a lazy Tensor stands for.

A Node is immutable once built (an in-place op gives the Tensor a new Node), so a graph
captured by one tensor never changes under it. `value` is filled when the cluster has
computed the node (or when it was created from data); from then on the node travels as a
leaf, unless it lies on an autograd path (`tracked`), whose history a gradient needs.
"""

from __future__ import annotations

import weakref

import numpy as np
from remotegrad.proto import catalog, nodes
from remotegrad.proto.catalog import Meta


class Node:
    __slots__ = (
        "__weakref__",
        "attrs",
        "batch",
        "hash",
        "inputs",
        "meta",
        "op",
        "tracked",
        "value",
    )

    def __init__(self, op: str, inputs: tuple[Node, ...], attrs: dict, meta: Meta,
                 tracked: bool = False) -> None:
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.meta = meta
        self.value: np.ndarray | None = None
        self.hash: str | None = None
        self.tracked = tracked
        self.batch: list[Node] | None = None  # siblings fetched in the same round trip

    @property
    def known(self) -> bool:
        return self.value is not None


def leaf(array: np.ndarray) -> Node:
    """A node whose value is given (created from data on the client)."""
    array = nodes.contiguous(array)
    array.flags.writeable = False
    node = Node("leaf", (), {}, Meta(tuple(array.shape), array.dtype.name))
    node.value = array
    return node


def const(value: float | bool) -> Node:
    """A Python number operand (weakly typed, as in PyTorch)."""
    return Node("const", (), {"value": value}, catalog.scalar_meta(value))


def op_node(op: str, inputs: tuple[Node, ...], attrs: dict | None, tracked: bool) -> Node:
    """Check a node through the catalog's rules, raising at the caller's line."""
    opdef = catalog.get(op)
    try:
        meta, full = opdef.check([i.meta for i in inputs], attrs or {})
    except catalog.OpError as e:
        message = str(e)
        # PyTorch raises IndexError for these two, RuntimeError for every other check.
        index = (message.startswith(("Dimension out of range", "too many indices"))
                 or " is out of bounds for " in message)
        raise (IndexError if index else RuntimeError)(message) from None
    return Node(op, inputs, full, meta, tracked)


# Tensors updated in place (optimiser steps, running statistics). Their new values are
# computed with the next round trip and kept in the cluster (see _wire), so a training
# loop's graphs do not grow from step to step. Keyed by id: a WeakSet would compare tensors
# with ==, which builds an `eq` node.
_updated: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def note_update(tensor) -> None:
    _updated[id(tensor)] = tensor


def pending_updates() -> list[Node]:
    """Nodes of in-place-updated tensors whose values are neither here nor in the cluster."""
    return [t._node for t in list(_updated.values())
            if t._node.value is None and t._node.hash is None and not t._node.tracked]


def forget_updates() -> None:
    _updated.clear()
