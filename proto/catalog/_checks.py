"""Checks that only the values can fail: an index out of range, an integer division by
zero. The shape rules cannot see them, so the forward checks its inputs.

On numpy a failed check raises at once. On a device (CuPy) asking whether any element
failed would wait for the device at every op, and CuPy's kernels wrap or clamp an index
out of range silently; so while a Program runs (`deferred`), each check only queues a
one-element flag on the device, and `settle` reads them all once, when the results come
back. A call whose check failed then raises the same error numpy would have raised,
instead of returning what the kernels made of bad indices.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

_local = threading.local()  # the flags of the Program running in this thread


def _on_host(xp) -> bool:
    return xp.__name__ == "numpy"


def fail_if(xp, bad, error: type[Exception], message: str) -> None:
    """Raise error(message) if any element of the bool array `bad` is true (on a device:
    when the running Program settles)."""
    flags = getattr(_local, "flags", None)
    if _on_host(xp) or flags is None:
        if bool(bad.any()):
            raise error(message)
        return
    flags.append((bad.any(), error, message))


def out_of_range(xp, index, size: int):
    """Where an index lies outside [-size, size) (negative indices count from the end)."""
    return (index < -size) | (index >= size)


@contextmanager
def deferred(xp):
    """Run a Program's steps with device checks queued, then settle them (see module)."""
    if _on_host(xp):
        yield
        return
    outer = getattr(_local, "flags", None)
    _local.flags = flags = []
    try:
        yield
    finally:
        _local.flags = outer
    settle(xp, flags)


def settle(xp, flags: list) -> None:
    if not flags:
        return
    hits = xp.stack([f for f, _, _ in flags])
    hits = hits.get() if hasattr(hits, "get") else hits  # the one wait for the device
    for hit, (_, error, message) in zip(hits, flags):
        if hit:
            raise error(message)
