"""Domain errors → gRPC status codes, in one place."""

from __future__ import annotations

import grpc

from remotegrad.proto.catalog import OpError
from remotegrad.worker.compute import MissingTensorError

from .pool import NoWorkersError, PoolBusyError

MISSING_KEY = "rg-missing-tensors"


class TooLargeError(Exception):
    """A graph whose tensors would exceed the configured limits."""


def abort(context: grpc.ServicerContext, err: Exception):
    """End the call with the status that names what went wrong; never returns."""
    if isinstance(err, MissingTensorError):
        context.set_trailing_metadata(((MISSING_KEY, ",".join(err.digests)),))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
    if isinstance(err, OpError):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
    if isinstance(err, (TooLargeError, PoolBusyError)):
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
    if isinstance(err, NoWorkersError):
        context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
    if isinstance(err, grpc.RpcError):  # a worker's own status, passed on
        context.abort(err.code(), err.details() or err.code().name)
    context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
