"""The autograd engine: wire graph → engine graph → grad nodes lowered → composites
expanded → compiled Program → run on xp.

Compiling is the slow part, so Programs are cached by the graph's *structure*: ops,
wiring, attributes, and each leaf's dtype and shape, with leaf hashes replaced by their
first-occurrence number. A training loop that sends the same graph with new weights each
step compiles once.
"""

from __future__ import annotations

import threading
from typing import Any

from remotegrad.proto.catalog import OpError, attrs_key
from remotegrad.proto.nodes import WireNode, distinct_wrts

from .autodiff import lower, materialize, vjp
from .executor import LeafLookup, Program, run
from .graph import Graph, Sym

__all__ = ["Graph", "OpError", "Program", "Sym", "build", "compile_graph", "execute",
           "lower", "materialize", "run", "vjp"]

CACHE_SIZE = 256
_caches: dict[int, dict[tuple, tuple[Program, list[int]]]] = {}  # per array module
_lock = threading.Lock()


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


def _structure(nodes: list[WireNode], targets: list[int]):
    """The cache key, and the distinct leaf hashes in first-occurrence order."""
    pos: dict[int, int] = {}
    hashes: dict[str, int] = {}
    key: list[tuple] = []
    add = key.append
    for p, n in enumerate(nodes):  # the hot loop of a cached call: kept minimal
        pos[n.id] = p
        a = n.attrs
        if n.op == "leaf":
            add(("leaf", hashes.setdefault(a["hash"], len(hashes)), a["dtype"], a["shape"],
                 a.get("tag")))
        elif a:
            add((n.op, tuple([pos[i] for i in n.inputs]), attrs_key(a)))
        else:
            add((n.op, tuple([pos[i] for i in n.inputs])))
    return (tuple(key), tuple(pos.get(t, -1) for t in targets)), list(hashes)


def execute(nodes: list[WireNode], targets: list[int], leaf: LeafLookup, xp: Any) -> list[Any]:
    prog, slots, hashes = _program(nodes, targets, xp)
    leaves = [leaf(hashes[k]) for k in slots]
    del hashes  # the structure key and its pieces are garbage before any array is made
    return prog.run(leaves)


def _program(nodes, targets, xp):
    try:
        key, hashes = _structure(nodes, targets)
        hash(key)
    except (KeyError, TypeError):  # malformed graph: let build() say what is wrong
        key, hashes = None, []
    cache = _caches.setdefault(id(xp), {})
    entry = cache.get(key) if key is not None else None
    if entry is None:
        g, t = build(_canonical(nodes, hashes), targets)
        prog = compile_graph(g, t, xp)
        order = {f"leaf{k}": k for k in range(len(hashes))}
        slots = [order[g_hash] for g_hash in _leaf_hashes(prog)]
        entry = (prog, slots)
        if key is not None:
            with _lock:  # worker threads share the cache
                cache[key] = entry
                while len(cache) > CACHE_SIZE:  # oldest first out (insertion order)
                    del cache[next(iter(cache))]
    return (*entry, hashes)


def _canonical(nodes: list[WireNode], hashes: list[str]) -> list[WireNode]:
    """Leaf hashes renamed to `leaf<k>`, so a compiled Program is independent of the data."""
    index = {h: k for k, h in enumerate(hashes)}
    out = []
    for n in nodes:
        if n.op == "leaf" and n.attrs.get("hash") in index:
            n = WireNode(n.id, n.op, n.inputs, {**n.attrs, "hash": f"leaf{index[n.attrs['hash']]}"})
        out.append(n)
    return out


def _leaf_hashes(prog: Program) -> list[str]:
    return [prog.leaf_hashes[i] for i in range(len(prog.leaves))]
