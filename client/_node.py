"""Client-side graph nodes: what a lazy Tensor stands for.

A Node is immutable once built (an in-place op gives the Tensor a new Node), so a graph
captured by one tensor never changes under it. `value` is filled when the cluster has
computed the node (or when it was created from data); from then on the node travels as a
leaf, unless it lies on an autograd path (`tracked`), whose history a gradient needs.
"""

from __future__ import annotations

import re

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
        raise builtin_error(str(e)) from None
    return Node(op, inputs, full, meta, tracked)


# The first words of the rules' messages for which PyTorch raises a class other than
# RuntimeError (its TORCH_CHECK_INDEX / TORCH_CHECK_VALUE / Python-level checks).
_INDEX = ("Dimension out of range", "too many indices", "Dimension specified as ")
_VALUE = ("Using a target size (", "Target size (", "Expected input batch_size (",
          "Expected 1 or more dimensions", "step must be greater than zero",
          "For 1D input, 1D target must have size 1",
          "slice step cannot be zero")


def builtin_error(message: str) -> Exception:
    """The builtin exception PyTorch raises for a shape/dtype rule's message."""
    if (message.startswith(_INDEX) or " is out of bounds for " in message
            or re.match(r"\w+\(\): Expected reduction dim (\d+ to have non-zero size|to be "
                        r"specified for input.numel\(\) == 0\.$)", message)):
        return IndexError(message)
    if message.startswith(_VALUE):
        return ValueError(message)
    if " not implemented for '" in message:
        return NotImplementedError(message)
    return RuntimeError(message)
