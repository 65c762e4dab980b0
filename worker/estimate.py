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

import threading
from collections import OrderedDict

from remotegrad.proto.catalog import OpError, attrs_key
from remotegrad.proto.nodes import WireNode
from . import engine


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


class Estimates:
    """(largest tensor, peak bytes) of the lowered graph, remembered by the graph's
    structure (ops, wiring, attributes, leaf dtypes and shapes; not the leaf bytes): a
    training loop sends the same structure every step and is lowered here once."""

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[tuple, tuple[engine.Graph, int]] = OrderedDict()
        self._size, self._lock = size, threading.Lock()

    def of(self, nodes: list[WireNode], targets: list[int], g: engine.Graph | None = None,
           g_targets: list[int] | None = None):
        """The lowered graph's (biggest tensor meta, peak bytes); `g` is the built graph
        (built here, only when the structure is new, when not given)."""
        key = _structure(nodes, targets)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        if g is None:
            g, g_targets = engine.build(nodes, targets)
        try:
            low, lt = lowered(g, g_targets)
        except (OpError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            # The worker would fail the same way: a gradient its rules cannot form.
            raise OpError(f"cannot form the gradient: {type(e).__name__}: {e}") from None
        value = (max(low.metas, key=lambda m: m.nbytes), peak_bytes(low, lt))
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


def _structure(nodes: list[WireNode], targets: list[int]) -> tuple:
    pos: dict[int, int] = {}
    key = []
    for p, n in enumerate(nodes):
        pos[n.id] = p
        attrs = attrs_key({k: v for k, v in n.attrs.items()
                           if not (n.op == "leaf" and k == "hash")})
        key.append((n.op, tuple(pos[i] for i in n.inputs), attrs))
    return tuple(key), tuple(pos[t] for t in targets)


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
