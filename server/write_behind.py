"""Store writes off a call's critical path.

A leaf sent inline travels with its request: the worker computes on those bytes, not on
the store's. Remembering it in the shared store serves only later requests that name it
by hash (a raw client's; the SDK resends what the cluster lacks on FAILED_PRECONDITION),
so the gateway hands the write to one background thread instead of waiting for Redis.
The queue is bounded in bytes: past the bound a write is made at once, in the caller's
thread, so that a burst slows its sender instead of growing the gateway's memory (a
queued message keeps its whole request alive until written).
"""

from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger("remotegrad.gateway")


class WriteBehind:
    def __init__(self, store, max_bytes: int = 64 << 20) -> None:
        self.store, self.max_bytes = store, max_bytes
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._bytes = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._drain, name="remotegrad-write-behind",
                                        daemon=True)
        self._thread.start()

    def put(self, tenant: str, msg) -> None:
        size = len(msg.data)
        with self._lock:
            later = self._bytes + size <= self.max_bytes
            if later:
                self._bytes += size
        if later:
            self._queue.put((tenant, msg, size))
        else:
            self.store.put(tenant, msg)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write is made (tests; a graceful stop)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._bytes == 0, timeout)

    def _drain(self) -> None:
        while True:
            tenant, msg, size = self._queue.get()
            try:
                self.store.put(tenant, msg)  # a GuardedStore: an outage is counted there
            except Exception:  # noqa: BLE001  (the write is a convenience; never fatal)
                log.exception("write-behind of tensor %s failed", msg.hash)
            finally:
                with self._idle:
                    self._bytes -= size
                    self._idle.notify_all()
