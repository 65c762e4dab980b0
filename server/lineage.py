"""Where a kept tensor came from, until its durable copy exists.

A kept tensor whose holder dies before its copy is written (by that worker, behind its
answer: worker/held.py) can be computed again: computation is pure, and its name is its
provenance (proto/keys.py kept_name), so its producing request, run on another worker,
gives the same bytes under the same name; that worker then holds them and writes the
copy. The gateway learns that a copy exists by asking the store (server/durable.py's
sweep), never from the bytes. This keeps that request (whose inputs are
names, and its inline leaves) per kept tensor until the copy is written, and counts the
names each such request reads: a name the SDK releases meanwhile keeps its copy until no
pending lineage needs it (the gateway defers that release), so the recomputation finds
its inputs. Bounded in bytes (the requests kept, inline leaves and all, each counted
once however many names it produced, and every entry's own cost): past the bound the
oldest lineage is dropped (logged). A bound in entries let a few steps with large inline
leaves (a 16 MiB batch each) hold gigabytes.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

log = logging.getLogger("remotegrad.gateway")


ENTRY_BYTES = 256  # what one (tenant, name) entry costs besides its request
NODE_BYTES = 256  # what one node of a kept request costs in memory (a parsed message)


class Origin:
    """One producing request: `positions` gives each kept name's index in its answer."""

    __slots__ = ("deps", "entries", "nbytes", "positions", "req")

    def __init__(self, req, positions: dict[str, int]) -> None:
        self.req, self.positions = req, positions
        inline = {t.hash for t in req.tensors}
        self.deps = {n.attrs["hash"].s for n in req.graph.nodes
                     if n.op == "leaf" and "hash" in n.attrs} - inline
        # An estimate, not req.ByteSize(): that encodes the request (12 ms for 16 MiB).
        self.nbytes = (sum(len(t.data) for t in req.tensors) + NODE_BYTES *
                       (len(req.graph.nodes) + len(req.targets) // 8))
        self.entries = 0  # names in the lineage that came from it


class Lineage:
    """Not thread-safe: the caller holds its lock."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0  # of the requests (each once) and entries held
        self._origins: OrderedDict[tuple[str, str], Origin] = OrderedDict()
        self._needed: dict[tuple[str, str], int] = {}  # names pending lineage reads

    def note(self, tenant: str, origin: Origin, digests) -> list[tuple[str, str]]:
        """`digests` (kept, not yet persisted) came from `origin`; the (tenant, name)s
        whose lineage went because old entries had to go (bound): those the dropped
        entries alone read, then the dropped names themselves (a release deferred while
        their copy was on its way is decided now: no sweep looks at them again)."""
        for d in digests:
            if (tenant, d) in self._origins:
                continue
            self._origins[(tenant, d)] = origin
            self.nbytes += ENTRY_BYTES + (0 if origin.entries else origin.nbytes)
            origin.entries += 1
            for dep in origin.deps:
                self._needed[(tenant, dep)] = self._needed.get((tenant, dep), 0) + 1
        freed, dropped = [], []
        while self.nbytes > self.max_bytes and self._origins:
            (t, d), _ = next(iter(self._origins.items()))
            dropped.append((t, d))
            freed += self.done(t, d)
        if dropped:  # one line per call: a call may keep tens of thousands of targets
            log.warning("lineage of %d kept tensors dropped (their requests past %d bytes, "
                        "unpersisted), the oldest first: %s ...", len(dropped),
                        self.max_bytes, dropped[0][1])
        return freed + dropped

    def done(self, tenant: str, digest: str) -> list[tuple[str, str]]:
        """`digest` was persisted (or released): its lineage goes; the (tenant, name)s it
        read that no lineage needs now."""
        origin = self._origins.pop((tenant, digest), None)
        if origin is None:
            return []
        origin.entries -= 1
        self.nbytes -= ENTRY_BYTES + (0 if origin.entries else origin.nbytes)
        out = []
        for dep in origin.deps:
            key = (tenant, dep)
            left = self._needed.get(key, 0) - 1
            if left > 0:
                self._needed[key] = left
            else:
                self._needed.pop(key, None)
                out.append(key)
        return out

    def needed(self, tenant: str, name: str) -> bool:
        return (tenant, name) in self._needed

    def origin(self, tenant: str, digest: str) -> Origin | None:
        return self._origins.get((tenant, digest))

    def pending(self) -> dict[str, list[str]]:
        """Every name whose copy is not known to exist, by tenant."""
        out: dict[str, list[str]] = {}
        for tenant, name in self._origins:
            out.setdefault(tenant, []).append(name)
        return out
