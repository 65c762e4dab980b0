"""The autograd engine: wire graph → engine graph → grad nodes lowered → composites
expanded → compiled Program → run on xp.

Everything that depends only on a graph's *structure* (ops, wiring, attributes, and each
leaf's dtype and shape, with leaf names replaced by their first-occurrence number) is
worked out once per process and kept in a `Plan`: the graph checked through the catalog,
the lowered graph, its memory estimate, the compiled Program for each array module. The
gateway asks a plan for its checks and limits, the worker for its program: a training
loop that sends the same structure with new values each step is planned once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from remotegrad.proto.catalog import OpError, attrs_key
from remotegrad.proto.nodes import WireNode, distinct_wrts

from .autodiff import lower, materialize, vjp
from .executor import LeafLookup, Program, run
from .graph import Graph, Sym

__all__ = ["Graph", "OpError", "Plan", "Program", "Sym", "build", "compile_graph", "execute",
           "lower", "materialize", "plan", "plans", "run", "run_planned", "vjp"]


def build(nodes: list[WireNode], targets: list[int]) -> tuple[Graph, list[int]]:
    """Check a wire graph through the catalog: ids unique, inputs declared before use
    (so no cycles or dangling references), every node's arity, attributes and shapes."""
    g = Graph()
    ids: dict[int, int] = {}
    salts = distinct_wrts(nodes)
    for pos, n in enumerate(nodes):
        if n.id in ids:
            raise OpError(f"node {pos}: duplicate node id {n.id}")
        missing = [i for i in n.inputs if i not in ids]
        if missing:
            raise OpError(f"node {n.id} ({n.op}): input(s) {missing} not defined before it")
        try:
            ids[n.id] = g.add(n.op, tuple(ids[i] for i in n.inputs), n.attrs, salts.get(n.id))
        except (OpError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            # A rule that meets input it did not foresee still answers with a bad graph.
            raise OpError(f"node {n.id} ({n.op}): {e}") from None
    bad = [t for t in targets if t not in ids]
    if bad:
        raise OpError(f"target(s) {bad} are not nodes of the graph")
    if not targets:
        raise OpError("no targets: nothing to compute")
    return g, [ids[t] for t in targets]


def compile_graph(g: Graph, targets: list[int], xp: Any, fuse: bool | None = None) -> Program:
    """Lower grad nodes, expand composites, plan: a Program ready to run on `xp`
    (`fuse`: see Program)."""
    lowered, lt = lower(g, targets)
    final, ft = materialize(lowered, lt)
    return Program(final, ft, xp, fuse)


_LEAF_ATTRS = frozenset({"hash", "dtype", "shape", "tag"})


def structure(nodes: list[WireNode], targets: list[int]):
    """The structure key (None for a malformed graph: build() says what is wrong), and the
    distinct leaf names in first-occurrence order. The one definition of a graph's
    identity short of its data; attrs_key tells -0.0 from 0.0 and finds NaNs equal. Two
    graphs with one key are the same checked graph: whatever the key leaves out (a leaf's
    name) must not be able to make a graph invalid."""
    pos: dict[int, int] = {}
    names: dict[str, int] = {}
    key: list[tuple] = []
    add = key.append
    try:
        for p, n in enumerate(nodes):  # the hot loop of a planned call: kept minimal
            if n.id in pos:
                return None, []
            pos[n.id] = p
            a = n.attrs
            if n.op == "leaf":
                if n.inputs or not a.keys() <= _LEAF_ATTRS:  # only build() may say why
                    return None, []
                add(("leaf", names.setdefault(a["hash"], len(names)), a["dtype"], a["shape"],
                     a.get("tag")))
            elif a:
                add((n.op, tuple([pos[i] for i in n.inputs]), attrs_key(a)))
            else:
                add((n.op, tuple([pos[i] for i in n.inputs])))
        out = (tuple(key), tuple([pos[t] for t in targets]))
        hash(out)
    except (KeyError, TypeError):
        return None, []
    return out, list(names)


class Plan:
    """What a graph's structure decides, each part worked out on first use: `graph` and
    `targets` (built and checked through the catalog, leaves named leaf0, leaf1, ... in
    first-occurrence order), the lowered graph, `memo` for facts others derive from it
    (the memory estimate), and the compiled Program of each array module."""

    def __init__(self, g: Graph, targets: list[int]) -> None:
        self.graph, self.targets = g, targets
        self.memo: dict[str, Any] = {}
        self._lowered: tuple[Graph, list[int]] | None = None
        self._programs: dict[int, tuple[Program, list[int]]] = {}
        self._lock = threading.Lock()

    def lowered(self) -> tuple[Graph, list[int]]:
        """Grad nodes lowered, composites expanded: what runs."""
        if self._lowered is None:
            low, lt = lower(self.graph, self.targets)
            self._lowered = materialize(low, lt)
        return self._lowered

    def program(self, xp: Any) -> tuple[Program, list[int]]:
        """The Program for `xp`, and for each of its leaves the leaf's first-occurrence
        number (run() takes the leaves' arrays in that order)."""
        entry = self._programs.get(id(xp))
        if entry is None:
            with self._lock:  # worker threads share plans: compile once
                entry = self._programs.get(id(xp))
                if entry is None:
                    prog = Program(*self.lowered(), xp)
                    slots = [int(prog.leaf_hashes[i][4:]) for i in range(len(prog.leaves))]
                    entry = self._programs[id(xp)] = (prog, slots)
        return entry


class Plans:
    """The plans of the structures seen lately (least recently used out first), at most
    `size` of them and `nodes` nodes in all: a plan keeps about 3.7 KB of RSS per node
    after its call, so 256 plans of 1M-node graphs would keep gigabytes. A graph larger
    than `nodes` is planned for its call and not kept."""

    def __init__(self, size: int = 256, nodes: int = 250_000) -> None:
        self.size, self.nodes = size, nodes
        self._items: OrderedDict[tuple, Plan] = OrderedDict()
        self._held = 0  # nodes of the plans kept
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0

    NODE_BYTES = 3700  # RSS a kept plan holds per node (measured; see the class doc)

    def nbytes(self) -> int:
        """About what the kept plans hold (a worker's memory budget counts it)."""
        return self._held * self.NODE_BYTES

    def shrink(self, to_bytes: int) -> None:
        """Drop least recently used plans until they hold at most `to_bytes`."""
        with self._lock:
            while self._items and self._held * self.NODE_BYTES > to_bytes:
                self._held -= len(self._items.popitem(last=False)[1].graph)

    def get(self, key) -> Plan | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key, value: Plan) -> None:
        if len(value.graph) > self.nodes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._held -= len(old.graph) if old is not None else 0
            self._items[key] = value
            self._held += len(value.graph)
            while len(self._items) > self.size or self._held > self.nodes:
                self._held -= len(self._items.popitem(last=False)[1].graph)


plans = Plans()


def plan(nodes: list[WireNode], targets: list[int]) -> tuple[Plan, list[str]]:
    """The graph's plan (built, checked and kept when its structure is new; OpError when
    the catalog refuses it), and its distinct leaf names in first-occurrence order."""
    key, names = structure(nodes, targets)
    found = plans.get(key) if key is not None else None
    if found is None:
        found = Plan(*build(_canonical(nodes, names), targets))
        if key is not None:
            plans.put(key, found)
    return found, names


def run_planned(key, arrays: list, xp: Any) -> list[Any] | None:
    """The values of a structure planned before (key: `structure()`'s, as the embedded
    mode's client computes it) over its leaves' arrays in first-occurrence order, already
    on `xp`; None when no plan is kept for it. Nothing here sorts errors, moves arrays or
    builds a graph: the embedded mode's host path for a loop's every step, whose caller
    falls back to worker.compute.evaluate_planned (which does all that) on a miss or on
    any error, running the pure program again there."""
    found = plans.get(key)
    if found is None:
        return None
    prog, slots = found.program(xp)
    return prog.run([arrays[k] for k in slots])


def execute(nodes: list[WireNode], targets: list[int], leaf: LeafLookup, xp: Any,
            planned: tuple[Plan, list[str]] | None = None) -> list[Any]:
    """Run the graph; `planned`: plan(nodes, targets) when the caller has it already."""
    found, names = plan(nodes, targets) if planned is None else planned
    prog, slots = found.program(xp)
    leaves = [leaf(names[k]) for k in slots]
    del names  # the structure key and its pieces are garbage before any array is made
    return prog.run(leaves)


def _canonical(nodes: list[WireNode], hashes: list[str]) -> list[WireNode]:
    """Leaf hashes renamed to `leaf<k>`, so a compiled Program is independent of the data."""
    index = {h: k for k, h in enumerate(hashes)}
    out = []
    for n in nodes:
        if n.op == "leaf" and n.attrs.get("hash") in index:
            n = WireNode(n.id, n.op, n.inputs, {**n.attrs, "hash": f"leaf{index[n.attrs['hash']]}"})
        out.append(n)
    return out
