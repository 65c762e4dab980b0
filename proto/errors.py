"""Errors the values of a computation cause, named the same way on every side of the wire.

The shape rules catch what the structure of a graph gets wrong; what only the values can get
wrong (an index out of range, an integer division by zero) surfaces while a worker runs
the graph, where the catalog's forward raises it as PyTorch raises it: the builtin class
PyTorch's user sees and PyTorch's message (proto/catalog/_checks.py).

The worker turns such an exception into a `ComputeError` that keeps both: `kind`, the name
of the builtin class PyTorch raises, and the message. In a cluster the gateway's status
carries the kind to the SDK as the trailing metadata KIND_KEY (proto/status.py, the one
place that maps errors to status codes); in the embedded mode the SDK reads the kind off the
exception itself. Either way the SDK raises the same class of its family with the same
message (client/_errors.py).
"""

from __future__ import annotations

import builtins

from .catalog import OpError

KIND_KEY = "rg-error-kind"  # trailing metadata: the builtin class the SDK raises
KINDS = ("IndexError", "ValueError", "RuntimeError")


class ComputeError(OpError):
    """The values made a valid graph fail while it was computed (INVALID_ARGUMENT: the
    caller's input is wrong, and retrying elsewhere gives the same answer)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind if kind in KINDS else "RuntimeError"


def compute_error(err: Exception) -> ComputeError:
    """The ComputeError for what an op's forward raised: an IndexError, ValueError or
    RuntimeError (a check's CheckedRuntimeError) as it is; anything else is PyTorch's
    RuntimeError (an integer division by zero is `RuntimeError: ZeroDivisionError` in
    PyTorch), naming the Python class it was raised as unless the message already does."""
    for kind in KINDS:
        if isinstance(err, getattr(builtins, kind)):
            return ComputeError(kind, str(err))
    name, message = type(err).__name__, str(err)
    if message != name:
        message = f"{name}: {message}" if message else name
    return ComputeError("RuntimeError", message)


def kind_of(err: BaseException) -> str | None:
    """The kind to carry for an error, if it has one."""
    return err.kind if isinstance(err, ComputeError) else None


# --- what the cluster answers besides the computation's own errors --------------------
class MissingTensorError(OpError):
    """Tensors named by a request that the cluster does not hold (FAILED_PRECONDITION: the
    SDK sends their bytes again)."""

    def __init__(self, digests: list[str]) -> None:
        super().__init__(f"tensor(s) not held by the cluster: {', '.join(digests)}")
        self.digests = digests


class NoWorkersError(Exception):
    """No live worker is registered."""


class PoolBusyError(Exception):
    """Every worker's queue is full."""


class StoreUnavailableError(Exception):
    """The shared tensor store could not keep a tensor now (Redis down, or failing over):
    UNAVAILABLE, which a client retries within its window, rather than a refusal."""


class NoWorkerFitsError(Exception):
    """A computation needs more memory than any live worker's limit (RESOURCE_EXHAUSTED)."""


class WorkerRefusedError(Exception):
    """A worker refused the gateway itself (its worker secret differs): the cluster's
    configuration is wrong, not the caller's credentials (INTERNAL)."""
