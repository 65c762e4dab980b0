"""Reverse mode as graph rewriting: every `grad` node becomes ordinary nodes.

`lower` copies a graph in topological order into a fresh one; when it meets a grad node,
all of the grad node's inputs are already copied, so their ancestry holds no grad node and
one reverse sweep over it, written with the catalog's derivative rules, yields the
gradient as new nodes. Grad nodes that share outputs and seeds are answered by the same
sweep. Gradients of gradients work because an inner grad node is lowered before an outer
one reads it.
"""

from __future__ import annotations

from collections import defaultdict

from remotegrad.proto import catalog

from .graph import Graph, Sym


def unbroadcast(g: Graph, cot: int, shape: tuple[int, ...], dtype: str) -> int:
    """Sum a cotangent back to an input's shape and cast it to the input's dtype."""
    meta = g.metas[cot]
    if meta.shape != shape:
        cot = g.add("sum_to", (cot,), {"shape": shape})
    if g.metas[cot].dtype != dtype:
        cot = g.add("cast", (cot,), {"dtype": dtype})
    return cot


def vjp(g: Graph, outputs: list[int], seeds: list[int], wrts: list[int]) -> list[int]:
    """Nodes holding sum_k seed_k · d(output_k)/d(wrt), for each wrt, in one reverse sweep."""
    order = g.needed(outputs)
    wrtset = set(wrts)
    reach: set[int] = set()  # nodes through which a gradient can flow from some wrt
    for n in order:
        if n in wrtset or (catalog.get(g.ops[n]).differentiable
                           and any(i in reach for i in g.inputs[n])):
            reach.add(n)
    cot: dict[int, int] = {}
    for out, seed in zip(outputs, seeds):
        seed = unbroadcast(g, seed, g.metas[out].shape, g.metas[out].dtype)
        cot[out] = g.add("add", (cot[out], seed)) if out in cot else seed
    for n in reversed(order):
        if n not in reach or n not in cot or g.ops[n] == "leaf":
            continue
        _backprop_node(g, n, cot, reach)
    return [cot[w] if w in cot else _zeros(g, w) for w in wrts]


def _backprop_node(g: Graph, n: int, cot: dict[int, int], reach: set[int]) -> None:
    opdef = catalog.get(g.ops[n])
    if not opdef.differentiable:
        return
    args = [Sym(g, i) for i in g.inputs[n]]
    for idx, i in enumerate(g.inputs[n]):
        if i not in reach or g.metas[i].dtype not in catalog.FLOATING:
            continue
        rule = opdef.rule(idx)
        if rule is None:
            continue
        contrib = rule(Sym(g, cot[n]), *args, out=Sym(g, n), **g.attrs[n])
        if contrib is None:
            continue
        c = unbroadcast(g, contrib.id, g.metas[i].shape, g.metas[i].dtype)
        cot[i] = g.add("add", (cot[i], c)) if i in cot else c


def _zeros(g: Graph, w: int) -> int:
    m = g.metas[w]
    return g.add("full", (), {"shape": m.shape, "value": 0.0, "dtype": m.dtype})


def lower(src: Graph, targets: list[int]) -> tuple[Graph, list[int]]:
    """A copy of the part of `src` the targets need, with every grad node expanded."""
    dst = Graph()
    new: dict[int, int] = {}
    order = src.needed(targets)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for n in order:
        if src.ops[n] == "grad":
            k = src.attrs[n]["n"]
            groups[src.inputs[n][: 2 * k]].append(n)
    for n in order:
        if n in new:
            continue
        if src.ops[n] != "grad":
            new[n] = dst.add(src.ops[n], tuple(new[i] for i in src.inputs[n]), src.attrs[n])
            continue
        k = src.attrs[n]["n"]
        key = src.inputs[n][: 2 * k]
        members = groups[key]
        outs = [new[i] for i in key[:k]]
        seeds = [new[i] for i in key[k:]]
        # A wrt not yet copied is no ancestor of the outputs: its gradient is zero.
        ready = [m for m in members if src.inputs[m][-1] in new]
        grads = vjp(dst, outs, seeds, [new[src.inputs[m][-1]] for m in ready])
        for m, gid in zip(ready, grads):
            new[m] = gid
        for m in members:
            if m not in new:
                wm = src.metas[src.inputs[m][-1]]
                new[m] = dst.add("full", (), {"shape": wm.shape, "value": 0.0,
                                              "dtype": wm.dtype})
    return dst, [new[t] for t in targets]
