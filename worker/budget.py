"""A worker's limits across the calls it runs at once.

`--memory-limit` is one budget for the whole worker: a computation is admitted only when
its estimated peak fits in what the computations already running leave free, so four
concurrent 240 MiB graphs on a 300 MiB worker run one after another instead of together.
A call waits for room at most `wait` seconds (`--budget-wait`) and never past its own
deadline (it is refused DEADLINE_MARGIN before, so that its caller learns why rather than
seeing its deadline pass), then is refused with RESOURCE_EXHAUSTED. A graph larger than
the whole budget is refused at once.

The worker's caches (its tensor LRU and its plan cache: anything with `nbytes()` and
`shrink(to_bytes)`) are inside the budget too: what they hold counts as used, a call that
does not fit beside them and the running calls evicts them first (least recently used
out), and a call that ends shrinks them back within what the running calls leave.

Each call holds a `Ticket`; what the budget has given out is the sum of the tickets'
holdings, so admitting is one assignment (`ticket.held = need`) and releasing one removal:
an exception arriving between two statements (Cancellation raises asynchronously) cannot
leave the books wrong.
"""

from __future__ import annotations

import threading
import time

from remotegrad.proto.codec import TooLargeError

from .estimate import describe_bytes

DEADLINE_MARGIN = 0.1  # seconds before a call's deadline at which its wait for room ends


class BudgetError(TooLargeError):
    """No room in the worker's memory budget in time (RESOURCE_EXHAUSTED)."""


class Budget:
    def __init__(self, memory_limit: int = 0, max_flops: float = 0.0, wait: float = 30.0,
                 where: str = "numpy", caches: tuple = ()) -> None:
        self.limit, self.max_flops, self.wait, self.where = memory_limit, max_flops, wait, where
        self.caches = tuple(caches)  # evicted before a call is kept waiting
        self._tickets: set[Ticket] = set()
        self._cond = threading.Condition()

    def ticket(self) -> Ticket:
        t = Ticket(self)
        with self._cond:
            self._tickets.add(t)
        return t

    def in_use(self) -> int:
        """Bytes admitted to the computations running now."""
        with self._cond:
            return self._used()

    def cached(self) -> int:
        """Bytes the caches hold."""
        return sum(c.nbytes() for c in self.caches)

    def _used(self) -> int:
        return sum(t.held for t in self._tickets)

    def _fits(self, need: int) -> bool:
        """Whether `need` fits beside the running calls, evicting cached bytes for it."""
        over = self._used() + self.cached() + need - self.limit
        for c in self.caches:  # the tensor LRU first (as given), then the plans
            if over <= 0:
                break
            held = c.nbytes()
            c.shrink(max(0, held - over))
            over -= held - c.nbytes()
        return over <= 0

    def _release(self, t: Ticket) -> None:
        with self._cond:
            self._tickets.discard(t)
            if self.limit:  # what the call put in the caches, back within the budget
                self._fits(0)
            self._cond.notify_all()


class Ticket:
    """One call's share of a Budget (see the module doc)."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: Budget) -> None:
        self.budget, self.held = budget, 0

    def take(self, need: int, cancel=None) -> None:
        """Wait until `need` bytes fit beside what the others hold (`cancel.check()` is
        called while waiting), then hold them; BudgetError after `budget.wait` seconds, or
        DEADLINE_MARGIN before `cancel.deadline` (a time.monotonic() value, or None)."""
        b = self.budget
        if not b.limit:
            return
        start = time.monotonic()
        end = start + b.wait
        deadline = getattr(cancel, "deadline", None)
        if deadline is not None:
            end = min(end, deadline - DEADLINE_MARGIN)
        with b._cond:
            while not b._fits(need):
                left = end - time.monotonic()
                if left <= 0:
                    raise self._refusal(need, time.monotonic() - start)
                b._cond.wait(min(left, 0.05))
                if cancel is not None:
                    cancel.check()
            self.held = need

    def _refusal(self, need: int, waited: float) -> BudgetError:
        b = self.budget
        busy = b._used() + b.cached()
        why = "--budget-wait" if waited >= b.wait - DEADLINE_MARGIN else "the call's deadline"
        return BudgetError(
            f"this worker's memory budget ({describe_bytes(b.limit)}, {b.where}) has "
            f"{describe_bytes(max(0, b.limit - busy))} free: {describe_bytes(busy)} is held "
            f"by the computations running now; this one needs about {describe_bytes(need)} "
            f"at its peak (waited {waited:.1f}s, the most {why} allows)")

    def release(self) -> None:
        self.budget._release(self)
