"""Domain errors → gRPC status codes, in one place: the boundary of every servicer (the
gateway's and the workers').

An error the values of a computation caused also carries its kind (the builtin class
PyTorch raises for it, proto/errors.py) in the trailing metadata KIND_KEY, set where a
worker fails and passed on by the gateway, so that the SDK raises what PyTorch raises."""

from __future__ import annotations

import grpc

from .catalog import OpError
from .codec import TooLargeError
from .errors import (KIND_KEY, MissingTensorError, NoWorkerFitsError, NoWorkersError,
                     PoolBusyError, StoreUnavailableError, WorkerRefusedError, kind_of)
from .keys import KeyNameError, is_digest

MISSING_KEY = "rg-missing-tensors"
# gRPC's own server pushback (gRFC A6): a negative value tells a client's retry policy not
# to retry. No workers is an answer, not a transient failure of this connection.
PUSHBACK_KEY = "grpc-retry-pushback-ms"

_CODES = [
    (MissingTensorError, grpc.StatusCode.FAILED_PRECONDITION),
    (OpError, grpc.StatusCode.INVALID_ARGUMENT),
    (KeyNameError, grpc.StatusCode.INVALID_ARGUMENT),
    (TooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (PoolBusyError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NoWorkerFitsError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (MemoryError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NoWorkersError, grpc.StatusCode.UNAVAILABLE),
    (StoreUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (WorkerRefusedError, grpc.StatusCode.INTERNAL),
]


def status_of(err: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(err, grpc.RpcError):  # a worker's own status, passed on
        return err.code(), err.details() or err.code().name
    for cls, code in _CODES:
        if isinstance(err, cls):
            return code, str(err)
    return grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}"


def abort(context: grpc.ServicerContext, err: Exception):
    """End the call with the status that names what went wrong; never returns."""
    code, details = status_of(err)
    kind = _passed_on_kind(err) if isinstance(err, grpc.RpcError) else kind_of(err)
    if isinstance(err, MissingTensorError):
        # Only well-formed digests: metadata values must be printable ASCII.
        digests = [d for d in err.digests if is_digest(d)]
        context.set_trailing_metadata(((MISSING_KEY, ",".join(digests)),))
    elif isinstance(err, NoWorkersError):
        context.set_trailing_metadata(((PUSHBACK_KEY, "-1"),))
    elif kind is not None:
        context.set_trailing_metadata(((KIND_KEY, kind),))
    context.abort(code, details)


def _passed_on_kind(err: grpc.RpcError) -> str | None:
    """The kind a worker's status carried (the gateway passes its status on)."""
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == KIND_KEY:
            return value
    return None
