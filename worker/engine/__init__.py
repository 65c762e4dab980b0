"""The autograd engine: wire graph → engine graph → grad nodes lowered → run on xp."""

from __future__ import annotations

from typing import Any

from remotegrad.proto.catalog import OpError
from remotegrad.proto.codec import WireNode

from .autodiff import lower, vjp
from .executor import LeafLookup, run
from .graph import Graph, Sym

__all__ = ["Graph", "OpError", "Sym", "build", "execute", "lower", "run", "vjp"]


def build(nodes: list[WireNode], targets: list[int]) -> tuple[Graph, list[int]]:
    """Check a wire graph through the catalog: ids unique, inputs declared before use
    (so no cycles or dangling references), every node's arity, attributes and shapes."""
    g = Graph()
    ids: dict[int, int] = {}
    for pos, n in enumerate(nodes):
        if n.id in ids:
            raise OpError(f"node {pos}: duplicate node id {n.id}")
        missing = [i for i in n.inputs if i not in ids]
        if missing:
            raise OpError(f"node {n.id} ({n.op}): input(s) {missing} not defined before it")
        try:
            ids[n.id] = g.add(n.op, tuple(ids[i] for i in n.inputs), n.attrs)
        except OpError as e:
            raise OpError(f"node {n.id} ({n.op}): {e}") from None
    bad = [t for t in targets if t not in ids]
    if bad:
        raise OpError(f"target(s) {bad} are not nodes of the graph")
    if not targets:
        raise OpError("no targets: nothing to compute")
    return g, [ids[t] for t in targets]


def execute(nodes: list[WireNode], targets: list[int], leaf: LeafLookup, xp: Any) -> list[Any]:
    g, t = build(nodes, targets)
    lowered, lt = lower(g, t)
    return run(lowered, lt, leaf, xp)
