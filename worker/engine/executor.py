"""Runs a lowered graph on an array module (numpy or cupy).

The plan is made once per graph: only the nodes the targets need, in id order (which is
topological), each with its forward function, the dtype its inputs are cast to, and the
values that die after it, so every intermediate is freed right after its last use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from remotegrad.proto import catalog
from remotegrad.proto.catalog import OpError, result_type

from .graph import Graph

LeafLookup = Callable[[str], Any]


def _plan(g: Graph, targets: list[int]):
    order = g.needed(targets)
    last_use: dict[int, int] = {}
    for pos, n in enumerate(order):
        for i in g.inputs[n]:
            last_use[i] = pos
    keep = set(targets)
    dies: list[list[int]] = [[] for _ in order]
    for i, pos in last_use.items():
        if i not in keep:
            dies[pos].append(i)
    steps = []
    for pos, n in enumerate(order):
        opdef = catalog.get(g.ops[n])
        cast = None
        if opdef.promote:
            cast = result_type([g.metas[i] for i in g.inputs[n]])
        steps.append((n, opdef, g.inputs[n], g.attrs[n], cast, g.metas[n], dies[pos]))
    return steps


def run(g: Graph, targets: list[int], leaf: LeafLookup, xp) -> list[Any]:
    """Values of `targets`; `leaf(hash)` returns a leaf's array (already on `xp`)."""
    values: dict[int, Any] = {}
    for n, opdef, inputs, attrs, cast, meta, dies in _plan(g, targets):
        if opdef.name == "leaf":
            out = leaf(attrs["hash"])
            if tuple(out.shape) != meta.shape or out.dtype.name != meta.dtype:
                raise OpError(f"leaf {attrs['hash']}: stored tensor is {out.dtype.name}"
                              f"{list(out.shape)}, graph says {meta.dtype}{list(meta.shape)}")
        else:
            args = [values[i] for i in inputs]
            if cast is not None:
                args = [a if a.dtype.name == cast else a.astype(cast) for a in args]
            out = opdef.forward(xp, *args, **attrs)
            if not hasattr(out, "dtype") or out.dtype.name != meta.dtype or out.shape != meta.shape:
                out = xp.asarray(out, dtype=meta.dtype).reshape(meta.shape)
        values[n] = out
        for d in dies:
            del values[d]
    return [values[t] for t in targets]
