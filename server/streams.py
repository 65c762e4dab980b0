"""Bounds on PutTensor streams, so that no tenant can hold the gateway's threads or memory
with streams that send slowly or not at all.

Each stream holds one of the gateway's server threads for as long as it lasts. A tenant
may have `per_tenant` streams open at once and the gateway `total` (fewer than its
threads, so that health checks and other calls always find one); more are refused at once
(RESOURCE_EXHAUSTED). The bytes a tenant's open streams have received so far are bounded
by `tenant_bytes`. A stream that sends no chunk for `idle` seconds, or lasts longer than
`longest`, is cancelled by a watchdog thread (the blocked read of its next chunk ends).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from contextlib import contextmanager

from remotegrad.proto.codec import TooLargeError

log = logging.getLogger("remotegrad.gateway")


class _Stream:
    def __init__(self, tenant: str, context) -> None:
        self.tenant, self.context = tenant, context
        self.started = self.last = time.monotonic()
        self.received = 0
        self.cancelled = False


class StreamGate:
    def __init__(self, per_tenant: int = 4, total: int = 16, tenant_bytes: int = 4 << 30,
                 idle: float = 30.0, longest: float = 900.0) -> None:
        self.per_tenant, self.total, self.tenant_bytes = per_tenant, total, tenant_bytes
        self.idle, self.longest = idle, longest
        self._lock = threading.Lock()
        self._open: set[_Stream] = set()
        self._count: Counter[str] = Counter()
        self._bytes: Counter[str] = Counter()
        self._watchdog: threading.Thread | None = None

    @contextmanager
    def admit(self, tenant: str, context, outgoing: bool = False):
        """A stream's admission for the call's duration; yields a wrapper of its chunks
        (`outgoing`: FetchTensor's, which the gateway sends: their bytes are the store's,
        not held here, and a client that stops reading them leaves the stream idle)."""
        stream = _Stream(tenant, context)
        with self._lock:
            if self._count[tenant] >= self.per_tenant or len(self._open) >= self.total:
                raise TooLargeError(
                    f"too many tensor streams open (tenant {tenant!r}: "
                    f"{self._count[tenant]} of {self.per_tenant}; gateway: {len(self._open)} "
                    f"of {self.total}); retry when one has finished")
            self._open.add(stream)
            self._count[tenant] += 1
            self._start_watchdog()
        try:
            yield (lambda chunks: self._sent(stream, chunks)) if outgoing else (
                lambda chunks: self._counted(stream, chunks))
        finally:
            with self._lock:
                self._open.discard(stream)
                self._count[tenant] -= 1
                self._bytes[tenant] -= stream.received

    def _counted(self, stream: _Stream, chunks):
        for chunk in chunks:
            n = len(chunk.data)
            with self._lock:
                stream.last = time.monotonic()
                stream.received += n
                self._bytes[stream.tenant] += n
                over = self._bytes[stream.tenant] > self.tenant_bytes
            if over:
                raise TooLargeError(f"tenant {stream.tenant!r} has more than "
                                    f"{self.tenant_bytes} bytes in open tensor streams")
            yield chunk

    def _sent(self, stream: _Stream, chunks):
        for chunk in chunks:  # asked for the next one: the client took the one before
            with self._lock:
                stream.last = time.monotonic()
            yield chunk

    def _start_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="stream-watchdog",
                                              daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        while True:
            time.sleep(max(0.05, min(1.0, self.idle / 4)))
            now = time.monotonic()
            with self._lock:
                late = [s for s in self._open if not s.cancelled and (
                    now - s.last > self.idle or now - s.started > self.longest)]
                for s in late:
                    s.cancelled = True
            for s in late:
                log.info("tensor stream of tenant %r cancelled: %s", s.tenant,
                         "no chunk for %.0fs" % self.idle if now - s.last > self.idle
                         else "longer than %.0fs" % self.longest)
                s.context.cancel()
