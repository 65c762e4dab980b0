"""Memory a computation needs, estimated from shapes alone before anything is allocated.

The worker runs a graph in topological order and frees each intermediate right after
its last use, so the estimate walks the same order and keeps the largest sum of live
tensors (leaves included). Gradient nodes expand on the worker into many ordinary nodes,
some as large as the forward's biggest; they are lowered here the same way (symbolically:
shapes, no arrays) so that a gradient which would not fit is refused before it runs.

The gateway checks the estimate against its --max-memory-bytes and the registered workers'
memory limits; each worker checks it against its own --memory-limit before it fetches or
transfers any leaf.
"""

from __future__ import annotations

from remotegrad.proto.catalog import OpError
from remotegrad.proto.nodes import WireNode
from . import engine


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


def estimate(nodes: list[WireNode], targets: list[int]) -> tuple:
    """(largest tensor's Meta, peak bytes) of the graph as the worker will run it."""
    return of_plan(engine.plan(nodes, targets)[0])


def of_plan(plan: engine.Plan) -> tuple:
    """estimate() of a planned graph, worked out once per structure (kept in the plan)."""
    found = plan.memo.get("estimate")
    if found is None:
        try:
            low, lt = plan.lowered()
        except (OpError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            # The worker would fail the same way: a gradient its rules cannot form.
            raise OpError(f"cannot form the gradient: {type(e).__name__}: {e}") from None
        found = plan.memo["estimate"] = (max(low.metas, key=lambda m: m.nbytes),
                                         peak_bytes(low, lt))
    return found


def human_bytes(n: int) -> str:
    """`n` bytes as people read them: 1536 → '1.5 KiB'."""
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in _UNITS:
        size /= 1024
        if size < 1024 or unit == _UNITS[-1]:
            break
    return f"{size:.1f} {unit}"


_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def describe_bytes(n: int) -> str:
    """'1610612736 bytes (1.5 GiB)': exact for tools, readable for people."""
    return f"{n} bytes" if n < 1024 else f"{n} bytes ({human_bytes(n)})"
