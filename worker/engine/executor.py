"""Runs a lowered graph on an array module (numpy or cupy).

A graph is compiled once into a `Program`: only the nodes the targets need, in id order
(which is topological); constant subgraphs (no leaf below them) evaluated at compile
time when small; each remaining node a step `(function, input slots, output slot, slots
that die here)`, so a run is one tight loop with no per-node lookups, and every
intermediate is freed right after its last use. The first run checks every value
against its node's declared shape and dtype and patches the few steps whose array-module
result differs (numpy scalars, dtype quirks); later runs skip the checks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from remotegrad.proto import catalog
from remotegrad.proto.catalog import OpError

from .graph import Graph

LeafLookup = Callable[[str], Any]
FOLD_BYTES = 1 << 16  # constants up to this size are computed once, at compile time


def _bind(opdef, xp, attrs):
    fwd = opdef.forward
    if attrs:
        return partial(fwd, xp, **attrs)
    return partial(fwd, xp)


class Program:
    """A compiled graph. `leaves` are the lowered graph's leaf node ids; run() takes their
    arrays in that order."""

    def __init__(self, g: Graph, targets: list[int], xp) -> None:
        self.xp = xp
        self.targets = list(targets)
        order = g.needed(targets)
        self.leaves = [n for n in order if g.ops[n] == "leaf"]
        self.leaf_metas = [g.metas[n] for n in self.leaves]
        self.leaf_hashes = [g.attrs[n]["hash"] for n in self.leaves]
        self.nslots = len(g)
        folded = self._fold(g, order)
        self.consts = list(folded.items())
        live = [n for n in order if n not in folded and g.ops[n] != "leaf"]
        last: dict[int, int] = {}
        for pos, n in enumerate(live):
            for i in g.inputs[n]:
                last[i] = pos
        keep = set(targets)
        dies: list[list[int]] = [[] for _ in live]
        for i, pos in last.items():
            if i not in keep:
                dies[pos].append(i)
        self.steps = [(_bind(catalog.get(g.ops[n]), xp, g.attrs[n]), g.inputs[n], n,
                       tuple(dies[pos])) for pos, n in enumerate(live)]
        self.metas = {n: g.metas[n] for n in live}
        self.checked = False

    def _fold(self, g: Graph, order: list[int]) -> dict[int, Any]:
        folded: dict[int, Any] = {}
        for n in order:
            op = g.ops[n]
            if op == "leaf" or any(i not in folded for i in g.inputs[n]):
                continue
            if g.metas[n].nbytes > FOLD_BYTES or not catalog.get(op).forward:
                continue
            fn = _bind(catalog.get(op), self.xp, g.attrs[n])
            folded[n] = _conform(self.xp, fn(*(folded[i] for i in g.inputs[n])), g.metas[n])
        return folded

    def run(self, leaf_arrays: list[Any]) -> list[Any]:
        vals: list[Any] = [None] * self.nslots
        for n, v in self.consts:
            vals[n] = v
        for n, meta, a in zip(self.leaves, self.leaf_metas, leaf_arrays):
            if tuple(a.shape) != meta.shape or a.dtype.name != meta.dtype:
                raise OpError(f"leaf: stored tensor is {a.dtype.name}{list(a.shape)}, graph "
                              f"says {meta.dtype}{list(meta.shape)}")
            vals[n] = a
        if not self.checked:
            return self._run_checked(vals)
        for fn, ins, out, dies in self.steps:
            vals[out] = fn(*[vals[i] for i in ins])
            for d in dies:
                vals[d] = None
        return [vals[t] for t in self.targets]

    def _run_checked(self, vals: list[Any]) -> list[Any]:
        xp = self.xp
        steps = []
        for fn, ins, out, dies in self.steps:
            value = fn(*[vals[i] for i in ins])
            meta = self.metas[out]
            if not _conforms(xp, value, meta):
                fn = partial(_fixed, fn, xp, meta)
                value = _conform(xp, value, meta)
            vals[out] = value
            for d in dies:
                vals[d] = None
            steps.append((fn, ins, out, dies))
        self.steps, self.checked = steps, True
        return [vals[t] for t in self.targets]


def _conforms(xp, value, meta) -> bool:
    return (isinstance(value, xp.ndarray) and value.dtype.name == meta.dtype
            and value.shape == meta.shape)


def _conform(xp, value, meta):
    return xp.asarray(value, dtype=meta.dtype).reshape(meta.shape)


def _fixed(fn, xp, meta, *args):
    return _conform(xp, fn(*args), meta)


def run(g: Graph, targets: list[int], leaf: LeafLookup, xp) -> list[Any]:
    """Values of `targets`; `leaf(hash)` returns a leaf's array (already on `xp`)."""
    prog = Program(g, targets, xp)
    return prog.run([leaf(g.attrs[n]["hash"]) for n in prog.leaves])
