"""How many Compute calls one tenant may have running in a gateway at once.

Each call holds one of the gateway's threads and, on a worker, a slot and memory until it
ends; without a bound one tenant's burst of slow graphs takes every one of them and the
other tenants wait behind it. Over `per_tenant`, a call is refused at once with
RESOURCE_EXHAUSTED (the caller may try again when one has finished), never queued.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager

from remotegrad.proto.codec import TooLargeError


class TenantCalls:
    def __init__(self, per_tenant: int = 16) -> None:
        self.per_tenant = per_tenant  # 0: no bound
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()

    @contextmanager
    def admit(self, tenant: str):
        with self._lock:
            if self.per_tenant and self._running[tenant] >= self.per_tenant:
                raise TooLargeError(
                    f"tenant {tenant!r} has {self._running[tenant]} Compute calls running, "
                    f"the most one tenant may have at once (--max-calls-per-tenant "
                    f"{self.per_tenant}); retry when one has finished")
            self._running[tenant] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[tenant] -= 1
                if not self._running[tenant]:
                    del self._running[tenant]

    def running(self, tenant: str) -> int:
        with self._lock:
            return self._running[tenant]
