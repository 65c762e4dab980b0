"""The engine's graph: an append-only list of nodes in topological order.

`Graph.add` checks every node through the op catalog (arity, attributes, shape and dtype
rule) and shares identical subexpressions: adding a node that already exists returns the
existing id. Because a node can only name nodes added before it, ids are a topological
order and no graph built here can have a cycle.

`Sym` is a handle on one node, with Python operators and every catalog op as a method, so
derivative rules read like the maths (`g * y`, `x.log()`, `g.sum_to(shape)`).
"""

from __future__ import annotations

from typing import Any

from remotegrad.proto import catalog
from remotegrad.proto.catalog import Meta, OpError


class Graph:
    __slots__ = ("_cse", "attrs", "inputs", "metas", "ops", "salts")

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.inputs: list[tuple[int, ...]] = []
        self.attrs: list[dict[str, Any]] = []
        self.metas: list[Meta] = []
        self.salts: dict[int, int] = {}  # node -> what sets it apart from its twins
        self._cse: dict[tuple, int] = {}

    def __len__(self) -> int:
        return len(self.ops)

    def add(self, op: str, inputs: tuple[int, ...] | list[int] = (),
            attrs: dict | None = None, salt: int | None = None) -> int:
        inputs = tuple(inputs)
        opdef = catalog.get(op)
        meta, full = opdef.check([self.metas[i] for i in inputs], attrs or {})
        return self.add_checked(op, inputs, full, meta, salt)

    def add_checked(self, op: str, inputs: tuple[int, ...], full: dict, meta: Meta,
                    salt: int | None = None) -> int:
        """Add a node already checked elsewhere: a copy from another graph whose inputs
        have the same metas there (lowering, materializing). Skips the catalog rules.
        A `salt` keeps the node apart from an identical one (proto.nodes.distinct_wrts)."""
        key = (op, inputs, catalog.attrs_key(full), salt)
        found = self._cse.get(key)
        if found is not None:
            return found
        self.ops.append(op)
        self.inputs.append(inputs)
        self.attrs.append(full)
        self.metas.append(meta)
        nid = len(self.ops) - 1
        self._cse[key] = nid
        if salt is not None:
            self.salts[nid] = salt
        return nid

    def needed(self, targets: list[int], lo: int = 0) -> list[int]:
        """Ids of the nodes the targets depend on, in topological (id) order; with `lo`,
        only those with id >= lo (a reverse sweep from wrt nodes never goes below them)."""
        mark = bytearray(len(self.ops))
        for t in targets:
            mark[t] = 1
        inputs = self.inputs
        for n in range(max(targets, default=-1), lo - 1, -1):
            if mark[n]:
                for i in inputs[n]:
                    mark[i] = 1
        return [n for n in range(lo, len(mark)) if mark[n]]

    def ancestors(self, targets: list[int], lo: int) -> list[int]:
        """Like `needed(targets, lo)`, by a walk over the ancestry instead of a scan of the
        id range: cheap when the range is long but the ancestry above `lo` is small (a
        decomposition's vjp in a big graph)."""
        seen = {t for t in targets if t >= lo}
        stack = list(seen)
        inputs = self.inputs
        while stack:
            for i in inputs[stack.pop()]:
                if i >= lo and i not in seen:
                    seen.add(i)
                    stack.append(i)
        return sorted(seen)

    def sym(self, nid: int) -> Sym:
        return Sym(self, nid)


class Sym:
    """A node of a Graph, usable as an operand in derivative rules."""

    __slots__ = ("g", "id")
    __hash__ = None  # == builds a node; Syms are never dict keys

    def __init__(self, g: Graph, nid: int) -> None:
        self.g, self.id = g, nid

    @property
    def meta(self) -> Meta:
        return self.g.metas[self.id]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.meta.shape

    @property
    def dtype(self) -> str:
        return self.meta.dtype

    @property
    def ndim(self) -> int:
        return len(self.meta.shape)

    def source(self, op: str, **attrs: Any) -> Sym:
        """A node with no inputs (arange, full) in this node's graph."""
        return Sym(self.g, self.g.add(op, (), attrs))

    def new_full(self, shape: tuple[int, ...], value: float | bool) -> Sym:
        """A constant tensor of this node's dtype (torch.Tensor.new_full)."""
        return Sym(self.g, self.g.add("full", (), {"shape": tuple(shape), "value": value,
                                                    "dtype": self.dtype}))

    def _lift(self, other: Any) -> int:
        if isinstance(other, Sym):
            return other.id
        if isinstance(other, (bool, int, float)):
            return self.g.add("const", (), {"value": other})
        raise OpError(f"cannot use {type(other).__name__} in a derivative rule")

    def op(self, name: str, *others: Any, **attrs: Any) -> Sym:
        ids = (self.id, *(self._lift(o) for o in others))
        return Sym(self.g, self.g.add(name, ids, attrs))

    def rop(self, name: str, other: Any) -> Sym:
        return Sym(self.g, self.g.add(name, (self._lift(other), self.id)))

    def __getattr__(self, name: str):
        if name in catalog.CATALOG:
            return lambda *others, **attrs: self.op(name, *others, **attrs)
        raise AttributeError(name)

    def full_like(self, value: float | bool) -> Sym:
        return Sym(self.g, self.g.add("full", (), {"shape": self.shape, "value": value,
                                                    "dtype": self.dtype}))

    __add__ = lambda self, o: self.op("add", o)
    __radd__ = lambda self, o: self.rop("add", o)
    __sub__ = lambda self, o: self.op("sub", o)
    __rsub__ = lambda self, o: self.rop("sub", o)
    __mul__ = lambda self, o: self.op("mul", o)
    __rmul__ = lambda self, o: self.rop("mul", o)
    __truediv__ = lambda self, o: self.op("div", o)
    __rtruediv__ = lambda self, o: self.rop("div", o)
    __pow__ = lambda self, o: self.op("pow", o)
    __rpow__ = lambda self, o: self.rop("pow", o)
    __neg__ = lambda self: self.op("neg")
    __abs__ = lambda self: self.op("abs")
    __and__ = lambda self, o: self.op("logical_and", o)
    __or__ = lambda self, o: self.op("logical_or", o)
    __xor__ = lambda self, o: self.op("logical_xor", o)
    __invert__ = lambda self: self.op("logical_not")
    __eq__ = lambda self, o: self.op("eq", o)
    __ne__ = lambda self, o: self.op("ne", o)
    __lt__ = lambda self, o: self.op("lt", o)
    __le__ = lambda self, o: self.op("le", o)
    __gt__ = lambda self, o: self.op("gt", o)
    __ge__ = lambda self, o: self.op("ge", o)
