"""Where graphs go, and the state a session owns.

`connect()` picks a cluster (client/_remote.py) or the in-process engine; `current()` is
the session in use. A Session evaluates client nodes: `evaluate(nodes, keep)` gives each
node's value (and the name the cluster holds it under). The embedded session hands the
graph to the engine as Python objects, leaves named by identity (see _request).

A session owns the in-place updates not computed yet (`updates`: parameters and optimiser
state changed under no_grad). Reading any value computes them along with it, kept where
they are computed, so the next graph names them instead of repeating their history; an
optimiser step (or too many updates without a read) sends them on their own (`flush`).
The session's state lives as long as it does: connect() to another cluster closes the old
session and drops what was pending there (it may name tensors only that cluster holds).
"""

from __future__ import annotations

import logging
import os
import weakref

from ._errors import ClusterUnavailableError, from_engine_error
from ._node import Node, siblings
from ._request import by_identity, by_structure

log = logging.getLogger("remotegrad.client")

DEFAULT_ADDRESS = "localhost:50051"
# In-place updates noted since the last flush: past this many, they are sent (a loop that
# updates tensors by hand and never reads must not grow its graph without bound).
FLUSH_AFTER = 4096


class MissingTensorsError(Exception):
    """The cluster no longer holds some leaves this session sent before."""


class Updates:
    """Tensors updated in place whose new values are neither here nor in the cluster.
    Weak references keyed by id: a WeakSet would compare tensors with ==, which builds an
    `eq` node, and a WeakValueDictionary costs ~3 us a note (an optimiser notes every
    update). Dead entries go at the next pending(), which every read and flush makes."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}
        self.noted = 0  # since the last flush

    def note(self, tensor) -> None:
        ref = self._refs.get(id(tensor))
        if ref is None or ref() is not tensor:  # new, or a dead tensor's id reused
            self._refs[id(tensor)] = weakref.ref(tensor)
        self.noted += 1

    def pending(self) -> list[Node]:
        out, dead = [], []
        for key, ref in self._refs.items():
            t = ref()
            if t is None:
                dead.append(key)
                continue
            n = t._node
            if n.value is None and n.hash is None and not n.tracked:
                out.append(n)
        for key in dead:
            del self._refs[key]
        return out


class Session:
    """Evaluates client nodes, here or in a cluster; owns the updates pending for it."""

    address = "local"
    stream_threshold = float("inf")  # leaves larger than this are streamed up first

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.updates = Updates()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def materialize(self, nodes: list[Node]) -> None:
        """Compute the nodes' values (with their batch siblings and the pending updates)
        in one round trip."""
        targets = _targets(nodes)
        if not targets:
            return
        self.settle()
        keep = self.updates.pending()
        if keep:
            asked = {id(t) for t in targets}
            keep = [k for k in keep if id(k) not in asked]
        try:
            results = self.evaluate(keep + targets, len(keep))
        except Exception:  # noqa: BLE001
            if not keep:
                raise
            # A pending update that cannot be computed must not fail this value: it will
            # raise when it is itself read.
            keep = []
            results = self.evaluate(targets, 0)
        _known(keep, results)
        for node, (value, name) in zip(targets, results[len(keep):]):
            node.value, node.hash = value, name
            node.batch = None

    def flush(self) -> None:
        """Compute the pending updates now, kept where they are computed (an optimiser's
        step ends here). A loop that reads a value rarely then sends one step at a time,
        each the same structure as the last (the engine plans it once), instead of one
        graph that grows with every step until the read. A remote session does not wait
        for the answer: the next read (or flush) does."""
        self.settle()
        self.updates.noted = 0
        keep = self.updates.pending()
        if keep:
            self.evaluate_later(keep, lambda results: _known(keep, results))

    def evaluate(self, nodes: list, keep: int) -> list[tuple]:
        """(value, name) of each node: the first `keep` stay where they were computed
        (their value may then be None: the cluster holds them under `name`)."""
        raise NotImplementedError

    def evaluate_later(self, nodes: list, done) -> None:
        """Evaluate `nodes` (all kept) and hand the results to `done` at the next settle()
        (here: at once; a remote session sends them without waiting for the answer)."""
        done(self.evaluate(nodes, len(nodes)))

    def settle(self) -> None:
        """Wait for what evaluate_later sent; apply its results."""

    def compute(self, req):
        """A ComputeRequest answered (pb.ComputeRequest → pb.ComputeResponse)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _targets(nodes: list[Node]) -> list[Node]:
    """The nodes asked for, with their batch siblings, each once, unknown ones only."""
    out: list[Node] = []
    seen: set[int] = set()
    for n in nodes:
        for m in [*siblings(n), n] if n.batch else (n,):
            if m.value is None and id(m) not in seen:
                seen.add(id(m))
                out.append(m)
    return out


def _known(kept: list[Node], results: list[tuple]) -> None:
    for node, (value, name) in zip(kept, results):
        node.value, node.hash = value, name
        node.inputs = ()  # it is known (or held by name) from now on: its history can go


class LocalSession(Session):
    """The worker engine in this process: a notebook needs no cluster."""

    def __init__(self) -> None:
        super().__init__()
        import numpy as np

        from ._engine import (
            MemoryTensorStore,
            MissingTensorError,
            compute,
            evaluate_planned,
            run_planned,
        )
        self._compute, self._store, self._missing = compute, MemoryTensorStore(), MissingTensorError
        self._evaluate, self._run_planned, self._np = evaluate_planned, run_planned, np

    def evaluate(self, nodes: list, keep: int) -> list[tuple]:
        # The structure key and the arrays in one walk; the graph itself is built only for
        # a structure the engine has not planned yet (a loop's step is a lookup).
        key, arrays = by_structure(nodes)
        values = None
        if key is not None:
            try:  # a planned structure's program straight on the host arrays
                values = self._run_planned(key, arrays, self._np)
            except Exception:  # noqa: BLE001  (evaluate_planned runs it again, says why)
                values = None
        if values is None:
            values = self._engine(self._evaluate, key, arrays, lambda: by_identity(nodes)[:2])
        for v in values:
            v.setflags(write=False)
        return [(v, None) for v in values]

    def compute(self, req):
        """A ComputeRequest answered in this process (what the cluster's worker would do)."""
        return self._engine(self._compute, req, self._store)

    def _engine(self, fn, *args):
        try:
            return fn(*args)
        except self._missing as e:
            raise MissingTensorsError(str(e)) from None
        except Exception as e:  # noqa: BLE001  (the family's, as a cluster would say it)
            mine = from_engine_error(e)
            if mine is None:
                raise
        raise mine  # outside the handler: the engine's frames are not the user's


_current: Session | None = None


def connect(address: str | None = None, *, token: str | None = None, tls=None,
            timeout: float = 120.0) -> Session:
    """Use the cluster at `address` (default `$REMOTEGRAD_ADDR`, else localhost:50051), or
    `"local"` for the engine in this process. Raises if a cluster cannot be reached."""
    global _current
    address = address or os.environ.get("REMOTEGRAD_ADDR") or DEFAULT_ADDRESS
    token = token or os.environ.get("REMOTEGRAD_TOKEN") or None
    tls = tls or os.environ.get("REMOTEGRAD_TLS_CA") or None
    if address == "local":
        session: Session = LocalSession()
    else:
        from ._remote import RemoteSession
        session = RemoteSession(address, token=token, tls=tls, timeout=timeout)
        if not session.ping(timeout=5.0):
            session.close()
            raise ClusterUnavailableError(f"cannot reach remotegrad cluster at {address}")
    if _current is not None:
        _current.close()  # with the updates pending there (see the module's docstring)
    _current = session
    return session


def current() -> Session:
    """The session in use; on first use, `$REMOTEGRAD_ADDR` if set, else a cluster on
    localhost:50051 if one answers, else the in-process engine."""
    global _current
    if _current is None:
        if os.environ.get("REMOTEGRAD_ADDR"):
            connect()
        else:
            from ._remote import RemoteSession
            probe = RemoteSession(DEFAULT_ADDRESS)
            if probe.ping(timeout=0.3):
                _current = probe
            else:
                probe.close()
                log.info("no cluster at %s; computing in this process", DEFAULT_ADDRESS)
                _current = LocalSession()
    return _current


def materialize(nodes: list[Node]) -> None:
    """Compute the nodes' values (and their batch siblings') in one round trip."""
    current().materialize(nodes)


def flush() -> None:
    current().flush()


def note_update(tensor) -> None:
    """`tensor` was updated in place (its new value is a lazy node): the current session
    computes it with the next round trip, or sends it past FLUSH_AFTER updates."""
    session = current()
    session.updates.note(tensor)
    if session.updates.noted >= FLUSH_AFTER:
        session.flush()
