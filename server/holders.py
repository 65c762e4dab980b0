"""Which worker holds a kept tensor: routing follows the state.

A worker keeps what a call asked it to keep (parameters after a step, optimiser state) in
its own memory (worker/held.py). The gateway remembers who computed each kept tensor,
so the next call that names them goes to that worker (the pool takes it unless it is
busier than the rest) and reads no shared store. Bounded: the oldest entries go first, and
a wrong or stale entry costs only a store read on another worker.

Entries are per tenant, keyed by (tenant, name): kept names come from provenance
(proto/provenance.py), so two tenants making the same call get the same name, and one
tenant's entry must never answer another's presence check, route its calls or be
forgotten by its releases (workers hold by (tenant, name) too: worker/held.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class Holders:
    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._where: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, tenant: str, digest: str, worker: str, nbytes: int, meta=None) -> None:
        """`meta`: (dtype, shape) of the tensor, for reading it back from its holder."""
        key = (tenant, digest)
        with self._lock:
            self._where[key] = (worker, nbytes, meta)
            self._where.move_to_end(key)
            while len(self._where) > self.size:
                self._where.popitem(last=False)

    def most(self, tenant: str, nodes) -> str | None:
        """The worker holding the most bytes of the graph's leaves for `tenant` (None:
        nobody known)."""
        held: dict[str, int] = {}
        with self._lock:
            for n in nodes:
                if n.op == "leaf":
                    found = self._where.get((tenant, n.attrs.get("hash")))
                    if found is not None:
                        held[found[0]] = held.get(found[0], 0) + found[1]
        return max(held, key=held.get) if held else None

    def forget(self, tenant: str, digests) -> None:
        """Names the tenant released (or that went with its idleness): route by them no
        more. Another tenant's entries under the same names stay."""
        with self._lock:
            for d in digests:
                self._where.pop((tenant, d), None)

    def unknown(self, tenant: str, digests):
        """The names no worker is known to hold for `tenant` (a known one needs no store
        to exist: the shared store may have restarted empty, its holder still has it)."""
        with self._lock:
            return [d for d in digests if (tenant, d) not in self._where]

    def where(self, tenant: str, digest: str) -> tuple | None:
        """(worker address, bytes, (dtype, shape) or None) of a name `tenant` holds, or
        None."""
        with self._lock:
            return self._where.get((tenant, digest))
