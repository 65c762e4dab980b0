"""Store writes off a call's critical path (the gateway's and the worker's).

A leaf sent inline travels with its request: the worker computes on those bytes, not on
the store's. Remembering it in the shared store serves only later requests that name it
by hash (a raw client's; the SDK resends what the cluster lacks on FAILED_PRECONDITION),
so the gateway hands the write to one background thread instead of waiting for Redis.
A worker writes the durable copies of the kept results it holds the same way
(worker/held.py), and the gateway the releases of copies (server/durable.py), each in the
order they were handed over.
The queue is bounded in bytes: past the bound a write is made at once, in the caller's
thread, so that a burst slows its sender instead of growing the gateway's memory (a
queued message keeps its whole request alive until written). One write larger than the
bound is still queued when nothing else is (a large parameter is written behind too).
A write that must be tried again (a kept copy Redis refused or could not take) is handed
back for later (`after`): one timer thread puts it in the queue when it is due.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time

log = logging.getLogger("remotegrad.store")


class WriteBehind:
    def __init__(self, store=None, max_bytes: int = 64 << 20) -> None:
        self.store, self.max_bytes = store, max_bytes
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._bytes = self._jobs = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._drain, name="remotegrad-write-behind",
                                        daemon=True)
        self._thread.start()
        self._timed: list = []  # (due, order, job, what): a heap, for `after`
        self._timer: threading.Thread | None = None
        self._order = itertools.count()
        self._due = threading.Condition(threading.Lock())

    def put(self, tenant: str, msg) -> None:
        # a GuardedStore: an outage is counted there
        self.later(lambda: self.store.put(tenant, msg), len(msg.data), msg.hash)

    def later(self, job, size: int = 0, what: str = "") -> None:
        """Run `job()` in the background thread, after every job handed over before it
        (at once, here, if `size` more bytes would pass the bound)."""
        with self._lock:
            queued = self._bytes + size <= self.max_bytes or self._jobs == 0
            if queued:
                self._bytes += size
                self._jobs += 1
        if queued:
            self._queue.put((job, size, what))
        else:
            self._run(job, what)

    def after(self, delay: float, job, what: str = "") -> None:
        """Queue `job` (as `later`, counting no bytes) in `delay` seconds."""
        with self._due:
            heapq.heappush(self._timed, (time.monotonic() + delay, next(self._order), job,
                                         what))
            if self._timer is None:  # started on first use: most never need it
                self._timer = threading.Thread(target=self._wake, daemon=True,
                                               name="remotegrad-write-behind-timer")
                self._timer.start()
            self._due.notify()

    def _wake(self) -> None:
        while True:
            with self._due:
                while not self._timed or self._timed[0][0] > time.monotonic():
                    self._due.wait(self._timed[0][0] - time.monotonic()
                                   if self._timed else None)
                _, _, job, what = heapq.heappop(self._timed)
            self.later(job, 0, what)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write is made (tests; a graceful stop)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._jobs == 0, timeout)

    def _drain(self) -> None:
        while True:
            job, size, what = self._queue.get()
            try:
                self._run(job, what)
            finally:
                with self._idle:
                    self._bytes -= size
                    self._jobs -= 1
                    self._idle.notify_all()

    @staticmethod
    def _run(job, what: str) -> None:
        try:
            job()
        except Exception:  # noqa: BLE001  (logged; the caller has its answer already)
            log.exception("write-behind %s failed", what)
