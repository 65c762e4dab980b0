"""Hedged calls to workers: when a worker has not answered within a delay derived from the
latencies the gateway observed, the same request (compute is pure) goes to a second worker,
the first answer wins and the other call is cancelled.

What decides a hedge: `Latencies` (recent answer times per size class of computation: a
delay that fits small graphs would hedge every large one), and `Budget` (a token bucket
that caps hedges at about a tenth of calls, as gRPC's hedging throttle does, so that a slow
cluster is not sent twice the work).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque

from prometheus_client import Counter

HEDGES = Counter("remotegrad_hedges_total", "calls also sent to a second worker because the "
                 "first had not answered within the hedge delay, by which answered first "
                 "(first, hedge)", ["winner"])
STUCK = Counter("remotegrad_worker_stuck_total", "workers taken out of routing after "
                "consecutive calls they did not answer in time")


class Latencies:
    """Recent answer times of successful calls, per size class of their peak bytes."""

    WINDOW = 200  # answers kept per class
    MIN_SAMPLES = 8  # fewer: the delay is DEFAULT
    DEFAULT, FLOOR, CEILING = 1.0, 0.02, 5.0  # seconds
    FACTOR = 1.5  # times the 95th percentile

    def __init__(self) -> None:
        self._by_class: dict[int, deque] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _class(need: int) -> int:
        return max(0, int(need).bit_length() - 12) // 2  # one class per 4x in size

    def record(self, need: int, seconds: float) -> None:
        with self._lock:
            self._by_class.setdefault(self._class(need), deque(maxlen=self.WINDOW)).append(
                seconds)

    def known(self, need: int) -> bool:
        """Whether enough answers of this size class were seen to judge a late one."""
        with self._lock:
            return len(self._by_class.get(self._class(need), ())) >= self.MIN_SAMPLES

    def delay(self, need: int) -> float:
        """How long to wait for a worker before hedging a call of `need` peak bytes."""
        with self._lock:
            seen = sorted(self._by_class.get(self._class(need), ()))
        if len(seen) < self.MIN_SAMPLES:
            return self.DEFAULT
        p95 = seen[min(len(seen) - 1, int(0.95 * len(seen)))]
        return min(self.CEILING, max(self.FLOOR, self.FACTOR * p95))


class Budget:
    """Each call earns a tenth of a hedge, up to `cap` saved; a hedge spends one."""

    def __init__(self, per_call: float = 0.1, cap: float = 10.0) -> None:
        self._per_call, self._cap, self._tokens = per_call, cap, cap
        self._lock = threading.Lock()

    def earn(self) -> None:
        with self._lock:
            self._tokens = min(self._cap, self._tokens + self._per_call)

    def spend(self) -> bool:
        with self._lock:
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


class Calls:
    """The calls in flight for one request (one, or two once hedged): each started on an
    acquired worker, each released exactly once, when it is reported done or at close()."""

    def __init__(self, pool, send) -> None:
        self._pool, self._send = pool, send  # send(worker) -> a grpc future
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: dict = {}  # future -> (worker, started)
        self._lock = threading.Lock()
        self.client_gone = False
        self.hedged = False  # a second call was sent

    def start(self, worker) -> None:
        try:
            fut = self._send(worker)
        except BaseException:
            self._pool.release(worker)
            raise
        with self._lock:
            self._pending[fut] = (worker, time.monotonic())
        fut.add_done_callback(self._done.put)

    def next_done(self, timeout: float | None):
        """(worker, future, seconds it took) of the next call to finish, or None when
        `timeout` passes first."""
        while True:
            try:
                fut = self._done.get(timeout=timeout)
            except queue.Empty:
                return None
            with self._lock:
                entry = self._pending.pop(fut, None)
            if entry is not None:  # else already closed
                self._pool.release(entry[0])
                return entry[0], fut, time.monotonic() - entry[1]

    def pending(self) -> list[tuple]:
        """(worker, started) of the calls still in flight."""
        with self._lock:
            return list(self._pending.values())

    def cancel(self) -> None:
        """The caller went away: every call in flight is cancelled."""
        self.client_gone = True
        with self._lock:
            futures = list(self._pending)
        for fut in futures:
            fut.cancel()

    def close(self) -> None:
        """Cancel and release what is still in flight (the losers of a hedge)."""
        with self._lock:
            left, self._pending = self._pending, {}
        for fut, (worker, _) in left.items():
            fut.cancel()
            self._pool.release(worker)
