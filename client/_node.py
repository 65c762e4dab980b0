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
from remotegrad.proto.catalog._identity import value_key


class Node:
    __slots__ = (
        "__weakref__",
        "akey",
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
                 tracked: bool = False, akey: tuple | None = None) -> None:
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.akey = akey  # attrs_key(attrs) once known (attrs never change), or None
        self.meta = meta
        self.value: np.ndarray | None = None
        self.hash: str | None = None
        self.tracked = tracked
        # weak references to the siblings fetched in the same round trip (itself too)
        self.batch: tuple | None = None

    @property
    def known(self) -> bool:
        return self.value is not None


def siblings(node: Node) -> list[Node]:
    """The live nodes of `node`'s batch (itself among them), or [] when it has none (the
    batch holds weak references: see _tensor_base.batch)."""
    refs = node.batch
    if not refs:
        return []
    return [m for m in (r() for r in refs) if m is not None]


_DTYPE_NAMES: dict = {}


def dtype_name(dtype: np.dtype) -> str:
    """`dtype.name`, which numpy computes in Python on every access (~2 us)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


def leaf(array: np.ndarray) -> Node:
    """A node whose value is given (created from data on the client)."""
    array = nodes.contiguous(array)
    array.flags.writeable = False
    shape = array.shape  # a tuple of ints, as Meta holds it
    meta = _LEAF_METAS.get((shape, array.dtype))
    if meta is None:  # a Meta made and interned once per (shape, dtype), not per leaf
        meta = interned(Meta(shape, dtype_name(array.dtype)))
        if len(_LEAF_METAS) >= CHECKED_SIZE:
            _LEAF_METAS.clear()
        _LEAF_METAS[shape, array.dtype] = meta
    node = Node("leaf", (), {}, meta)
    node.value = array
    return node


_LEAF_METAS: dict[tuple, Meta] = {}


# A Python number's meta by its type (Metas are immutable: one object serves every const).
_SCALAR_METAS = {t: catalog.scalar_meta(t()) for t in (bool, int, float)}


def const(value: float | bool) -> Node:
    """A Python number operand (weakly typed, as in PyTorch): one node per value (by its
    value_key: -0.0 apart from 0.0, 2 from 2.0), shared by every op that uses it. A const
    never gets a value or inputs, so sharing it changes no graph's meaning, and a loop's
    `x * 0.9` records (and walks) no new node for the number.
    Found by (type, value) first, which needs no float.hex (~0.6 us): equal keys there are
    the same number but for zeros (0.0 == -0.0) and NaN (never equal), which go by
    value_key."""
    key = (type(value), value) if value and value == value else value_key(value)
    node = _CONSTS.get(key)
    if node is None:
        vkey = value_key(value)
        meta = _SCALAR_METAS.get(type(value))
        node = Node("const", (), {"value": value}, meta or interned(catalog.scalar_meta(value)),
                    False,
                    (("value", vkey),))  # attrs_key of the attributes, made directly
        if len(_CONSTS) >= CHECKED_SIZE:
            _CONSTS.clear()
        _CONSTS[key] = node
    return node


_CONSTS: dict = {}


def op_node(op: str, inputs: tuple[Node, ...], attrs: dict | None, tracked: bool) -> Node:
    """Check a node through the catalog's rules, raising at the caller's line."""
    meta, full, akey = checked(op, tuple([i.meta for i in inputs]), attrs or {})
    return Node(op, inputs, full, meta, tracked, akey)


# The catalog's verdicts on (op, input metas, attributes) seen lately. A rule is a function
# of these alone, so a loop that records the same ops over the same shapes checks each
# once; what a rule refuses is never kept (it raises again, at the caller's line). The
# verdict's meta is shared by every node it made (interned), so the inputs' metas are keyed
# by identity: their id()s, which no hashing of a Meta (a dataclass's __hash__ in Python,
# ~0.25 us) computes. An entry holds its input metas, so while it is kept no id in its key
# can be reused by another object; a meta that is equal but not the same only misses.
_CHECKED: dict[tuple, tuple] = {}
CHECKED_SIZE = 4096
_METAS: dict[Meta, Meta] = {}


def interned(meta: Meta) -> Meta:
    """One object for equal metas (bounded as _CHECKED is): the verdicts' keys then
    compare by identity, without Meta.__eq__."""
    found = _METAS.get(meta)
    if found is None:
        if len(_METAS) >= CHECKED_SIZE:
            _METAS.clear()
        found = _METAS[meta] = meta
    return found


def checked(op: str, metas: tuple, attrs: dict) -> tuple[Meta, dict, tuple | None]:
    """(meta, attributes with defaults, their attrs_key or None) of `op` over inputs of
    `metas`; raises PyTorch's exception class for what the rules refuse."""
    ids = tuple(map(id, metas))
    try:  # the attributes in the caller's order (unsorted: another order only misses)
        key = (op, ids, _attrs_seen(attrs)) if attrs else (op, ids)
        found = _CHECKED.get(key)
    except TypeError:  # an unhashable attribute: the rule says what is wrong with it
        key = found = None
    if found is not None:
        meta, full, akey, _ = found
        if not full:
            return meta, {}, akey
        full = dict(full)
        full.update(attrs)  # the caller's own values (np.float64(-0.0) keys as 0.0 does)
        return meta, full, akey
    opdef = catalog.get(op)
    try:
        meta, full = opdef.check(list(metas), attrs)
    except catalog.OpError as e:
        raise builtin_error(str(e)) from None
    if key is not None:
        try:
            akey = catalog.attrs_key(full) if full else None
            hash(akey)
        except TypeError:
            return meta, full, None
        if len(_CHECKED) >= CHECKED_SIZE:
            _CHECKED.clear()
        meta = interned(meta)
        _CHECKED[key] = (meta, dict(full), akey, metas)  # metas: their ids stay theirs
        return meta, full, akey
    return meta, full, None


_PLAIN_TYPES = frozenset({bool, int, str, type(None)})


def _attrs_seen(attrs: dict) -> tuple:
    """The attributes as part of a verdict's key: (name, type, value) where equal values
    of one type are the same value (ints, strings, bools, None, and floats but zeros and
    NaN: const's rule), without value_key's float.hex (~0.4 us an attribute); value_key's
    pair otherwise. One value always takes one form, and the two never compare equal."""
    out = []
    for k, v in attrs.items():
        t = type(v)
        if t in _PLAIN_TYPES or (t is float and v and v == v):
            out.append((k, t, v))
        else:
            out.append((k, value_key(v)))
    return tuple(out)


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
