"""Memory a computation needs, estimated from shapes alone before anything is allocated.

The worker runs a graph in topological order and frees each intermediate right after
its last use, so the estimate walks the same order and keeps the largest sum of live
tensors (leaves included). Gradient nodes expand on the worker into many ordinary nodes,
some as large as the forward's biggest; they are lowered here the same way (symbolically:
shapes, no arrays) so that a gradient which would not fit is refused before it runs.
"""

from __future__ import annotations

from remotegrad.worker import engine


def lowered(g: engine.Graph, targets: list[int]) -> tuple[engine.Graph, list[int]]:
    """The graph the worker will run: grad nodes lowered and composites expanded."""
    if "grad" not in g.ops:
        return g, targets
    low, lt = engine.lower(g, targets)
    return engine.materialize(low, lt)


def peak_bytes(g: engine.Graph, targets: list[int]) -> int:
    """The largest number of bytes live at once when `targets` are computed."""
    order = g.needed(targets)
    last: dict[int, int] = {}
    for pos, n in enumerate(order):
        for i in g.inputs[n]:
            last[i] = pos
    keep = set(targets)
    dies: dict[int, list[int]] = {}
    for i, pos in last.items():
        if i not in keep:
            dies.setdefault(pos, []).append(i)
    live = peak = 0
    for pos, n in enumerate(order):
        live += g.metas[n].nbytes
        peak = max(peak, live)
        for d in dies.get(pos, ()):
            live -= g.metas[d].nbytes
    return peak
