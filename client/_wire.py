"""Reading values: the nodes asked for, their batch siblings and the pending in-place
updates, evaluated in one round trip (see _session for where, _request for how the graph
travels).

Tensors updated in place (parameters and optimiser state under no_grad) are computed along
with whatever is materialized and kept where they were computed, so the next graph names
them instead of repeating their history.
"""

from __future__ import annotations

from ._node import Node, pending_updates
from ._request import travels_as_leaf as _travels_as_leaf  # noqa: F401  (_derivative's)
from ._session import current


def _targets(nodes: list[Node]) -> list[Node]:
    """The nodes asked for, with their batch siblings, each once, unknown ones only."""
    out: list[Node] = []
    seen: set[int] = set()
    for n in nodes:
        for m in [*(n.batch or ()), n]:
            if m.value is None and id(m) not in seen:
                seen.add(id(m))
                out.append(m)
    return out


def materialize(nodes: list[Node]) -> None:
    """Compute the nodes' values (and their batch siblings') in one round trip."""
    targets = _targets(nodes)
    if not targets:
        return
    session = current()
    session.settle()
    keep = [k for k in pending_updates() if all(k is not t for t in targets)]
    try:
        results = session.evaluate(keep + targets, len(keep))
    except Exception:  # noqa: BLE001
        if not keep:
            raise
        # A pending update that cannot be computed must not fail this value: it will
        # raise when it is itself read.
        keep = []
        results = session.evaluate(targets, 0)
    _known(keep, results)
    for node, (value, name) in zip(targets, results[len(keep):]):
        node.value, node.hash = value, name
        node.batch = None


def flush() -> None:
    """Compute the pending in-place updates now, kept where they are computed (an
    optimiser's step ends here). A loop that reads a value rarely then sends one step at a
    time, each the same structure as the last (the engine plans it once), instead of one
    graph that grows with every step until the read. A remote session does not wait for
    the answer: the next read (or flush) does."""
    session = current()
    session.settle()
    keep = pending_updates()
    if keep:
        session.evaluate_later(keep, lambda results: _known(keep, results))


def _known(kept: list[Node], results: list[tuple]) -> None:
    for node, (value, name) in zip(kept, results):
        node.value, node.hash = value, name
        node.inputs = ()  # it is known (or held by name) from now on: its history can go
