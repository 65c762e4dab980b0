"""The gateway's write-behind of inline leaves: the caller never waits for the store, the
write is made, and a burst past the byte bound is written at once instead of queued."""

from __future__ import annotations

import threading
import time

import numpy as np

from remotegrad.proto import codec
from remotegrad.proto.store import MemoryTensorStore
from remotegrad.server.write_behind import WriteBehind


class SlowStore(MemoryTensorStore):
    """A real in-process store whose writes wait until `opened` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = threading.Event()

    def put(self, tenant, msg):
        assert self.opened.wait(10)
        return super().put(tenant, msg)


def _msg(n: int):
    return codec.encode_array(np.arange(n, dtype=np.float32))


def test_the_caller_does_not_wait_and_the_write_lands():
    store = SlowStore()
    behind = WriteBehind(store, max_bytes=1 << 20)
    msg = _msg(16)
    start = time.monotonic()
    behind.put("t", msg)
    assert time.monotonic() - start < 1.0  # the store is still closed
    assert store.get("t", msg.hash) is None
    store.opened.set()
    assert behind.flush()
    assert store.get("t", msg.hash).data == msg.data


def test_past_the_byte_bound_the_write_is_made_at_once():
    store = SlowStore()
    behind = WriteBehind(store, max_bytes=100)
    small, big = _msg(8), _msg(64)  # 32 and 256 bytes
    behind.put("t", small)  # queued
    done = threading.Event()
    threading.Thread(target=lambda: (behind.put("t", big), done.set()), daemon=True).start()
    assert not done.wait(0.3), "a write past the bound must wait for the store"
    store.opened.set()
    assert done.wait(10) and behind.flush()
    assert store.get("t", big.hash) is not None and store.get("t", small.hash) is not None


def test_one_write_larger_than_the_bound_is_queued_when_nothing_else_is():
    store = SlowStore()
    behind = WriteBehind(store, max_bytes=100)
    big = _msg(64)  # 256 bytes, alone in the queue: the caller does not wait
    start = time.monotonic()
    behind.put("t", big)
    assert time.monotonic() - start < 1.0 and store.get("t", big.hash) is None
    store.opened.set()
    assert behind.flush() and store.get("t", big.hash) is not None
