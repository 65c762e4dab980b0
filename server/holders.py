"""Which worker holds a kept tensor: routing follows the state.

A worker keeps what a call asked it to keep (parameters after a step, optimiser state) in
its own memory (worker/compute.py). The gateway remembers who computed each kept tensor,
so the next call that names them goes to that worker (the pool takes it unless it is
busier than the rest) and reads no shared store. Bounded: the oldest entries go first, and
a wrong or stale entry costs only a store read on another worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class Holders:
    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._where: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, digest: str, worker: str, nbytes: int, meta=None) -> None:
        """`meta`: (dtype, shape) of the tensor, for reading it back from its holder."""
        with self._lock:
            self._where[digest] = (worker, nbytes, meta)
            self._where.move_to_end(digest)
            while len(self._where) > self.size:
                self._where.popitem(last=False)

    def most(self, nodes) -> str | None:
        """The worker holding the most bytes of the graph's leaves (None: nobody known)."""
        held: dict[str, int] = {}
        with self._lock:
            for n in nodes:
                if n.op == "leaf":
                    found = self._where.get(n.attrs.get("hash"))
                    if found is not None:
                        held[found[0]] = held.get(found[0], 0) + found[1]
        return max(held, key=held.get) if held else None

    def forget(self, digests) -> None:
        """Names the client released (or whose tenant went idle): route by them no more."""
        with self._lock:
            for d in digests:
                self._where.pop(d, None)

    def unknown(self, digests):
        """The names no worker is known to hold (a known one needs no store to exist: the
        shared store may have restarted empty, its holder still has it)."""
        with self._lock:
            return [d for d in digests if d not in self._where]

    def where(self, digest: str) -> tuple | None:
        """(worker address, bytes, (dtype, shape) or None) of a held name, or None."""
        with self._lock:
            return self._where.get(digest)
