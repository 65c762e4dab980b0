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
from collections.abc import Callable
from contextlib import contextmanager

_local = threading.local()  # the flags of the Program running in this thread
Message = str | Callable[[], str]  # a callable is asked only when the check has failed


class CheckedRuntimeError(RuntimeError):
    """PyTorch's RuntimeError for bad values (gather's index out of bounds), raised on
    purpose by a check; a RuntimeError from anywhere else is a bug."""


def _on_host(xp) -> bool:
    return xp.__name__ == "numpy"


def fail_if(xp, bad, error: type[Exception], message: Message) -> None:
    """Raise error(message) if any element of the bool array `bad` is true (on a device:
    when the running Program settles)."""
    flags = getattr(_local, "flags", None)
    if _on_host(xp) or flags is None:
        if bool(bad.any()):
            raise error(message if isinstance(message, str) else message())
        return
    flags.append((bad.any(), error, message))


def indices_within(xp, index, size: int, error: type[Exception], message,
                   negative: bool = False) -> None:
    """Fail unless every index lies in [0, size) (with `negative`, in [-size, size): from
    the end, as Python's). `message` is a string, or a function of the first index out of
    range that gives one."""
    if index.size == 0:
        return
    bad = ((index < -size) if negative else (index < 0)) | (index >= size)
    if isinstance(message, str):
        fail_if(xp, bad, error, message)
    else:
        fail_if(xp, bad, error, lambda: message(int(index[bad].ravel()[0])))


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
            raise error(message if isinstance(message, str) else message())
