"""The SDK's exception family, and the functions that turn what the engine or the cluster
reported into it: `from_rpc_error` (the one conversion of a grpc.RpcError) and
`from_engine_error` (the embedded mode's exceptions).

Every class derives from RemotegradError. An error PyTorch raises as a builtin (an index out
of range is an IndexError there) is raised here as a family class that derives from that
builtin too, with PyTorch's message, whether the graph ran in this process or in a cluster:
the worker names the class (the error's *kind*, proto/errors.py) and a cluster carries it
in the status's trailing metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remotegrad.proto.catalog import OpError
from remotegrad.proto.errors import KIND_KEY, KINDS, ComputeError

if TYPE_CHECKING:  # grpc is imported by the session, not by `import remotegrad`
    import grpc


class RemotegradError(Exception):
    """Base of every error remotegrad raises for what the engine or the cluster reported."""


class RemotegradRuntimeError(RemotegradError, RuntimeError):
    """What PyTorch raises as RuntimeError (an integer division by zero:
    `ZeroDivisionError`), and the cluster's own failures."""


class RemotegradIndexError(RemotegradError, IndexError):
    """What PyTorch raises as IndexError (`index out of range in self`)."""


class RemotegradValueError(RemotegradError, ValueError):
    """What PyTorch raises as ValueError."""


class ClusterUnavailableError(RemotegradRuntimeError, ConnectionError):
    """The cluster could not be reached (or has no live worker)."""


class GraphRefusedError(RemotegradRuntimeError):
    """The gateway (or the engine in this process) refused the graph (INVALID_ARGUMENT)
    — the message says why and where."""


class ResourceExhaustedError(RemotegradRuntimeError):
    """Too big, or the cluster is at capacity (RESOURCE_EXHAUSTED)."""


class DeadlineExceededError(RemotegradRuntimeError, TimeoutError):
    """The call did not finish within its deadline."""


class AuthenticationError(RemotegradRuntimeError, PermissionError):
    """A missing or wrong token (UNAUTHENTICATED / PERMISSION_DENIED)."""


for _cls in list(globals().values()):  # tracebacks name them as users import them
    if isinstance(_cls, type) and issubclass(_cls, RemotegradError):
        _cls.__module__ = "remotegrad"
del _cls

# The class for each kind of error the values of a computation cause (proto/errors.py).
_BY_KIND: dict[str, type[RemotegradError]] = {
    "IndexError": RemotegradIndexError,
    "ValueError": RemotegradValueError,
    "RuntimeError": RemotegradRuntimeError,
}
assert set(_BY_KIND) == set(KINDS)

_BY_CODE = {
    "INVALID_ARGUMENT": GraphRefusedError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "UNAVAILABLE": ClusterUnavailableError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": AuthenticationError,
}


def computed(kind: str, message: str) -> RemotegradError:
    """The error for a computation its values made fail: the same in both modes."""
    return _BY_KIND.get(kind, RemotegradRuntimeError)(message)


def from_rpc_error(err: grpc.RpcError, address: str) -> RemotegradError:
    code = err.code()
    details = err.details() or code.name
    kind = _trailer(err, KIND_KEY)
    if kind is not None:
        return computed(kind, details)
    cls = _BY_CODE.get(code.name, RemotegradRuntimeError)
    if cls is ClusterUnavailableError:
        return cls(f"remotegrad cluster at {address} is unavailable: {details}")
    return cls(f"{details} (from remotegrad cluster at {address}, status {code.name})")


def from_engine_error(err: Exception) -> RemotegradError | None:
    """The embedded mode's counterpart of from_rpc_error, for what the engine in this
    process raised (None: not an error of the family; it propagates as it is)."""
    from remotegrad.proto.codec import TooLargeError
    if isinstance(err, ComputeError):
        return computed(err.kind, str(err))
    if isinstance(err, OpError):
        return GraphRefusedError(f"{err} (from the remotegrad engine in this process)")
    if isinstance(err, TooLargeError):
        return ResourceExhaustedError(f"{err} (from the remotegrad engine in this process)")
    return None


def _trailer(err, key: str) -> str | None:
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for k, value in trailers or ():
        if k == key:
            return value
    return None
