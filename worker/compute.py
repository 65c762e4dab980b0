"""One ComputeRequest → one ComputeResponse: the path shared by the Worker service and the
embedded engine (`connect("local")`), with cooperative cancellation."""

from __future__ import annotations

import ctypes
import logging
import threading

import numpy as np
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.catalog import OpError
from remotegrad.proto.store import MemoryTensorStore

from . import engine
from .backend import numpy_backend

log = logging.getLogger("remotegrad.worker")

__all__ = ["CallCancelled", "Cancellation", "MemoryTensorStore", "MissingTensorError",
           "compute"]


class MissingTensorError(OpError):
    def __init__(self, digests: list[str]) -> None:
        super().__init__(f"tensor(s) not held by the cluster: {', '.join(digests)}")
        self.digests = digests


class CallCancelled(BaseException):  # noqa: N818  (like KeyboardInterrupt: not an Exception)
    """The call was cancelled (its caller went away or its deadline passed). A
    BaseException, so that no `except Exception` in the engine can swallow it."""


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule `exc` in another thread at its next bytecode boundary (None: unschedule)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc else None)


class Cancellation:
    """Stops a computation when its call ends early.

    `cancel()` (from any thread: gRPC runs it when the RPC terminates) raises
    CallCancelled inside the computing thread between two Python-level steps, so the
    engine stops after the op it is in (one array-module call), wherever it is, and
    every intermediate is released as the exception unwinds. It is raised at most once
    and only while the guarded block runs, and a pending one is withdrawn when the block
    ends first, so it can never land in code that runs later on the same thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._state = "idle"  # idle → running → (signalled →) done
        self.cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._state == "running":
                self._state = "signalled"
                _raise_in(self._thread, CallCancelled)

    def check(self) -> None:
        if self.cancelled:
            raise CallCancelled

    def run(self, fn, *args):
        with self._lock:
            if self.cancelled:
                raise CallCancelled
            self._thread, self._state = threading.get_ident(), "running"
        try:
            return fn(*args)
        finally:
            self._finish()

    def _finish(self) -> None:
        while True:
            try:
                with self._lock:
                    if self._state == "signalled":
                        _raise_in(self._thread, None)
                    self._state = "done"
                return
            except CallCancelled:  # delivered just now, inside this block: once only
                continue


def compute(req: pb.ComputeRequest, store, tenant: str = "default",
            backend=numpy_backend, cancel: Cancellation | None = None) -> pb.ComputeResponse:
    if cancel is not None:
        return cancel.run(_compute, req, store, tenant, backend, cancel)
    return _compute(req, store, tenant, backend, None)


def _compute(req, store, tenant, backend, cancel) -> pb.ComputeResponse:
    decoded = codec.decode_request(req)
    inline = decoded.tensor_protos
    for msg in inline.values():  # remembered for later requests that name it by hash
        store.put(tenant, msg)

    def leaf(digest: str):
        if cancel is not None:
            cancel.check()
        msg = inline.get(digest) or store.get(tenant, digest)
        if msg is None:
            raise MissingTensorError([digest])
        return backend.to_device(codec.decode_array(msg))

    try:
        values = engine.execute(decoded.nodes, decoded.targets, leaf, backend.xp)
    except MissingTensorError:
        raise  # FAILED_PRECONDITION: the client sends the bytes again
    except (IndexError, ValueError, ArithmeticError, TypeError) as e:
        # What the shape and dtype rules did not foresee: the values themselves (an index
        # out of range), or a dtype the array module has no loop for. The caller gets
        # INVALID_ARGUMENT with the reason; the log keeps the traceback, since a
        # TypeError may also be an engine bug.
        log.warning("graph failed while computing: %s: %s", type(e).__name__, e,
                    exc_info=isinstance(e, TypeError))
        raise OpError(f"computing the graph failed: {type(e).__name__}: {e}") from None
    return codec.encode_response([np.asarray(backend.to_host(v)) for v in values])
