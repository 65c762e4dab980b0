"""The gateway→worker hop's shared secret: the gateway sends it on every call to a worker,
and a worker that has one refuses (UNAUTHENTICATED) any call without it before it reads
the request or runs anything. Health checks stay open, for probes and orchestrators.

The secret is a setting (`--worker-secret`, better `REMOTEGRAD_WORKER_SECRET`: flags show in
process listings) and travels as call metadata, so it is secret only on a hop that is
encrypted or stays on the machine (loopback): across machines, combine it with TLS.
"""

from __future__ import annotations

import hmac

import grpc

SECRET_KEY = "rg-worker-secret"  # call metadata (lowercase: gRPC metadata keys are)
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


MIN_LENGTH = 16


def check_secret(secret: str) -> str:
    """A usable secret: printable ASCII without spaces (it travels as metadata), at least
    MIN_LENGTH characters; empty means none."""
    if secret and (len(secret) < MIN_LENGTH or not secret.isascii() or
                   not secret.isprintable() or any(c.isspace() for c in secret)):
        raise ValueError(f"the worker secret must be at least {MIN_LENGTH} printable ASCII "
                         "characters without spaces")
    return secret


def _with_secret(details: grpc.ClientCallDetails, secret: str) -> grpc.ClientCallDetails:
    metadata = [(k, v) for k, v in (details.metadata or ()) if k != SECRET_KEY]
    metadata.append((SECRET_KEY, secret))
    return _Details(details.method, details.timeout, metadata, details.credentials,
                    getattr(details, "wait_for_ready", None),
                    getattr(details, "compression", None))


class _Details(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready,
                 compression) -> None:
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready = credentials, wait_for_ready
        self.compression = compression


class SendSecret(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                 grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the secret to every call made on a channel (the gateway's to its workers)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(_with_secret(details, self._secret), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(_with_secret(details, self._secret), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(_with_secret(details, self._secret), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(_with_secret(details, self._secret), request_iterator)


def secured_channel(channel: grpc.Channel, secret: str) -> grpc.Channel:
    """`channel`, sending `secret` on every call (unchanged when there is none)."""
    return grpc.intercept_channel(channel, SendSecret(secret)) if secret else channel


def secret_matches(metadata, secret: str) -> bool:
    """Whether the call carries `secret`, compared in constant time."""
    expected = secret.encode()
    for key, value in metadata or ():
        if key == SECRET_KEY:
            given = value.encode() if isinstance(value, str) else bytes(value)
            return hmac.compare_digest(given, expected)
    return False


class RequireSecret(grpc.ServerInterceptor):
    """A worker's door: calls without the secret end UNAUTHENTICATED before any handler
    runs (none of the request is read: see `refusal`); health checks pass."""

    def __init__(self, secret: str, on_refused=lambda method: None) -> None:
        if not secret:
            raise ValueError("an empty worker secret")
        self._secret, self._on_refused = secret, on_refused

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES) or secret_matches(
                handler_call_details.invocation_metadata, self._secret):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None  # an unknown method stays UNIMPLEMENTED
        self._on_refused(method)
        return refusal(handler, grpc.StatusCode.UNAUTHENTICATED,
                       "this worker takes calls from its gateway only (worker secret "
                       "missing or wrong)")


def refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str):
    """A handler that ends the call with `code` before any of its request is read: it
    takes the request as a stream (a unary message is a stream of one on the wire) and
    never iterates it, so gRPC buffers no more of a refused message than its flow-control
    window, however large the message announces itself."""
    def deny(request_iterator, context):
        context.abort(code, details)

    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    return grpc.stream_unary_rpc_method_handler(deny)
