"""One ComputeRequest → one ComputeResponse: the path shared by the Worker service and the
embedded engine (`connect("local")`), with cooperative cancellation."""

from __future__ import annotations

import ctypes
import logging
import threading

import numpy as np
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.catalog import CheckedRuntimeError, OpError
from remotegrad.proto.codec import TooLargeError
from remotegrad.proto.errors import MissingTensorError, compute_error
from remotegrad.proto.nodes import WireNode
from remotegrad.proto.store import MemoryTensorStore

from . import engine
from .backend import is_out_of_memory, numpy_backend
from .budget import Budget
from .by_reference import Results
from .estimate import check_flops, describe_bytes, estimate, of_plan

log = logging.getLogger("remotegrad.worker")

__all__ = ["CallCancelled", "Cancellation", "MemoryTensorStore", "MissingTensorError",
           "WorkerMemoryError", "compute", "evaluate", "evaluate_planned"]

class WorkerMemoryError(TooLargeError):
    """A graph needs more memory than this worker has (RESOURCE_EXHAUSTED)."""


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
        self.deadline: float | None = None  # the call's, time.monotonic(); the budget reads it

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
            backend=numpy_backend, cancel: Cancellation | None = None,
            budget: Budget | None = None) -> pb.ComputeResponse:
    """`budget`: the worker's limits across its concurrent calls (worker/budget.py)."""
    ticket = budget.ticket() if budget is not None else None
    try:
        if cancel is not None:
            return cancel.run(_compute, req, store, tenant, backend, cancel, ticket)
        return _compute(req, store, tenant, backend, None, ticket)
    finally:
        if ticket is not None:
            ticket.release()  # outside cancel.run: no cancellation can land in it


def _compute(req, store, tenant, backend, cancel, ticket=None) -> pb.ComputeResponse:
    decoded = codec.decode_request(req)
    limit = backend.memory_limit
    planned = None
    if limit or ticket is not None:  # before any leaf is fetched, transferred or stored
        planned = engine.plan(decoded.nodes, decoded.targets)  # evaluate() runs it too
        plan = planned[0]
        # The request keeps its own copy of each inline leaf for the whole call, beside
        # the leaf's array (the estimate's one copy).
        peak = of_plan(plan)[1] + sum(_data_bytes(m) for m in req.tensors)
        if limit and peak > limit:
            raise WorkerMemoryError(
                f"the computation needs about {describe_bytes(peak)} at its peak (estimated "
                f"from shapes, gradients included), over this worker's memory limit of "
                f"{describe_bytes(limit)} ({backend.where})")
        if ticket is not None:
            check_flops(plan, ticket.budget.max_flops, "this worker's")
            ticket.take(peak, cancel)  # room beside the calls running now, or wait
    inline = decoded.tensor_protos
    held = getattr(store, "array", None)  # a worker's store holds arrays (worker/held.py)

    def leaf(digest: str):
        if cancel is not None:
            cancel.check()
        msg = inline.get(digest)
        if msg is None and held is not None:
            value = held(tenant, digest)
            if value is None:
                raise MissingTensorError([digest])
            return value
        msg = msg or store.get(tenant, digest)
        if msg is None:
            raise MissingTensorError([digest])
        return codec.decode_array(msg)

    try:
        values = evaluate(decoded.nodes, decoded.targets, leaf, backend, planned)
    finally:
        # Remembered for later requests that name them by hash: after the arrays made from
        # them are gone, so that the request, the cache and an array never hold one leaf
        # three times at once.
        for msg in inline.values():
            store.put(tenant, msg)
    release = getattr(store, "release", None)
    if release is not None and req.release:
        release(tenant, list(req.release))
    return _answer(req, decoded.targets, values, store, tenant)


def _data_bytes(msg: pb.TensorData) -> int:
    """An inline tensor's data bytes, from its dtype and shape where they say: no read of
    `data` (upb copies the field at each read, ~80 us for a fresh 200 KiB batch) nor
    ByteSize() (which encodes the message). The worker service has checked that every
    inline tensor's data has that length before compute runs (_verify_inline)."""
    n = codec.ITEMSIZE.get(msg.dtype)
    if n is None or any(s < 0 for s in msg.shape):
        return len(msg.data)
    for s in msg.shape:
        n *= s
    return n


def _answer(req, targets: list[int], values, store, tenant: str) -> pb.ComputeResponse:
    """The response: each target by value, but kept ones (parameters after a step,
    optimiser state) named by provenance (ComputeRequest.keep_as) stay in this worker's
    memory, their durable copies written behind (worker/held.py), and are answered by
    reference (name, dtype, shape; no bytes): nothing hashes or sends them. The others
    past the gateway's inline bound are stored here and answered by hash where this
    worker has the shared store (worker/by_reference.py)."""
    results = Results(req, store, tenant)
    if not req.keep:
        return pb.ComputeResponse(results=[results.result(t, v)
                                           for t, v in zip(targets, values)])
    kept = set(req.keep)
    names = dict(zip(req.keep, req.keep_as)) if len(req.keep_as) == len(req.keep) else None
    keep = getattr(store, "keep", None)
    refs = None
    if names is not None and keep is not None:
        refs = keep(tenant, {names[t]: v for t, v in zip(targets, values) if t in kept})
    resp = pb.ComputeResponse()
    for target, value in zip(targets, values):
        if target not in kept:
            resp.results.append(results.result(target, value))
        elif refs is not None:
            resp.results.append(refs[names[target]])
        else:
            resp.results.append(_keep_hashed(value, store, tenant))
    return resp


def _keep_hashed(value, store, tenant: str) -> pb.TensorData:
    """Without provenance names (a cluster without a shared store, whose gateway holds the
    only copy): named by content hash, kept here and answered with its bytes."""
    msg = codec.encode_array(value)
    store.put(tenant, msg)
    return msg


def evaluate(nodes: list[WireNode], targets: list[int], leaf, backend=numpy_backend,
             planned: tuple | None = None) -> list[np.ndarray]:
    """Run a graph whose leaves `leaf(name)` gives as host arrays; the targets' values on
    the host. What the values themselves make fail (an index out of range, an integer
    division by zero, the device's memory) is raised as the error PyTorch raises
    (proto/errors.py); a graph the rules refuse as OpError. The Worker service and the
    embedded mode (`connect("local")`, which names leaves by identity) share it.
    `planned`: engine.plan(nodes, targets) when the caller made it (the graph is not keyed
    twice)."""
    return _guarded(lambda device_leaf: engine.execute(nodes, targets, device_leaf,
                                                       backend.xp, planned),
                    leaf, backend, lambda: (nodes, targets))


def evaluate_planned(key, arrays: list, graph, backend=numpy_backend) -> list[np.ndarray]:
    """evaluate() for the embedded mode, given the graph's structure key and its leaves'
    arrays in first-occurrence order (client/_request.by_structure): a structure planned
    before runs without a wire graph; `graph()` builds one, as (nodes, targets) with leaf
    k named str(k), only for a new structure (or to describe an out-of-memory failure).
    Raises as evaluate() does."""
    def run(device_leaf):
        found = engine.plans.get(key) if key is not None else None
        if found is None:
            found, _ = engine.plan(*graph())
            if key is not None:
                engine.plans.put(key, found)
        prog, slots = found.program(backend.xp)
        return prog.run([device_leaf(k) for k in slots])

    return _guarded(run, arrays.__getitem__, backend, graph)


def _guarded(run, leaf, backend, graph) -> list[np.ndarray]:
    """`run(device_leaf)`'s values on the host, its errors sorted as evaluate() says."""
    on_device: dict = {}

    def device_leaf(name):
        value = on_device.get(name)
        if value is None:  # each leaf goes to the device once per call
            value = on_device[name] = backend.to_device(leaf(name))
        return value

    oom = None
    try:
        with backend.scope():
            values = run(device_leaf)
            on_device.clear()
            results = [np.asarray(backend.to_host(v)) for v in values]
            del values
    except OpError:
        raise  # a graph the engine refuses (or FAILED_PRECONDITION: bytes to send again)
    except Exception as e:  # noqa: BLE001  (sorted below; the rest propagates)
        if is_out_of_memory(e):
            oom = f"{type(e).__name__}: {e}"
        elif isinstance(e, (IndexError, ValueError, ArithmeticError, TypeError,
                            CheckedRuntimeError)):
            # What the shape and dtype rules did not foresee: the values themselves (an
            # index out of range, an integer division by zero, checked by the forwards as
            # PyTorch checks them), or a dtype the array module has no loop for. The caller
            # gets the error PyTorch raises (proto/errors.py), as INVALID_ARGUMENT from a
            # cluster. It is the caller's mistake, not this process's: nothing above info
            # in the log (in the embedded mode the log is the user's stderr); the traceback
            # is kept there for a TypeError, which may also be an engine bug.
            log.info("graph failed while computing: %s: %s", type(e).__name__, e,
                     exc_info=isinstance(e, TypeError))
            raise compute_error(e) from None
        else:
            raise
    if oom is not None:
        # Raised here, outside the handler, so that nothing keeps the failed exception's
        # frames and with them the arrays it was computing: the memory is free again.
        on_device.clear()
        raise WorkerMemoryError(_out_of_memory_message(oom, *graph(), backend))
    return results


def _peak(nodes: list[WireNode], targets: list[int]) -> int:
    """The graph's estimated peak bytes, gradients expanded (the gateway's estimate)."""
    return estimate(nodes, targets)[1]


def _out_of_memory_message(error: str, nodes, targets, backend) -> str:
    try:
        need = f"by the shape estimate it needs about {describe_bytes(_peak(nodes, targets))} at " \
               "its peak"
    except Exception:  # noqa: BLE001  (the message must not fail)
        need = "its shape estimate is unavailable"
    if backend.memory_limit:
        limit = (f"this worker's memory limit is {describe_bytes(backend.memory_limit)} "
                 f"({backend.where})")
    else:
        limit = f"this worker ({backend.where}) has no memory limit set (--memory-limit)"
    log.warning("out of memory computing a graph: %s", error)
    return (f"the worker ran out of memory computing the graph ({error}); {need}; {limit}; "
            "computations running at the same time share its memory")
