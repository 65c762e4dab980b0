"""The SDK's exception family, and the one function that turns a grpc.RpcError into it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # grpc is imported by the session, not by `import remotegrad`
    import grpc


class RemotegradError(RuntimeError):
    """Base of every error the cluster reports."""


class ClusterUnavailableError(RemotegradError, ConnectionError):
    """The cluster could not be reached (or has no live worker)."""


class GraphRefusedError(RemotegradError):
    """The gateway refused the graph (INVALID_ARGUMENT) — the message says why and where."""


class ResourceExhaustedError(RemotegradError):
    """Too big, or the cluster is at capacity (RESOURCE_EXHAUSTED)."""


class DeadlineExceededError(RemotegradError, TimeoutError):
    """The call did not finish within its deadline."""


class AuthenticationError(RemotegradError, PermissionError):
    """A missing or wrong token (UNAUTHENTICATED / PERMISSION_DENIED)."""


_BY_CODE = {
    "INVALID_ARGUMENT": GraphRefusedError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "UNAVAILABLE": ClusterUnavailableError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": AuthenticationError,
}


def from_rpc_error(err: grpc.RpcError, address: str) -> RemotegradError:
    code = err.code()
    details = err.details() or code.name
    cls = _BY_CODE.get(code.name, RemotegradError)
    if cls is ClusterUnavailableError:
        return cls(f"remotegrad cluster at {address} is unavailable: {details}")
    return cls(f"{details} (from remotegrad cluster at {address}, status {code.name})")
