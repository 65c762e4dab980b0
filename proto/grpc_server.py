"""What every remotegrad gRPC server carries: grpc.health.v1, server reflection, explicit
message-size limits, and TLS (optionally mutual) when certificates are configured."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection

from . import remotegrad_pb2 as pb


def server_options(max_receive: int = -1, max_connection_age_s: float = 0
                   ) -> list[tuple[str, int]]:
    """`max_connection_age_s`: close each client connection after this long (after a grace
    for the calls on it), so that clients reconnect and find gateways added since (a
    Kubernetes Service scaled up); 0: never."""
    options = [("grpc.max_send_message_length", -1),
               ("grpc.max_receive_message_length", max_receive),
               ("grpc.so_reuseport", 0)]
    if max_connection_age_s:
        options += [("grpc.max_connection_age_ms", int(max_connection_age_s * 1000)),
                    ("grpc.max_connection_age_grace_ms", 30_000)]
    return options


SERVER_OPTIONS = server_options()


def make_server(threads: int, max_concurrent: int | None = None, interceptors=(),
                max_receive: int = -1, max_connection_age_s: float = 0) -> grpc.Server:
    return grpc.server(futures.ThreadPoolExecutor(max_workers=threads),
                       options=server_options(max_receive, max_connection_age_s),
                       maximum_concurrent_rpcs=max_concurrent,
                       interceptors=list(interceptors))


def add_standard_services(server: grpc.Server, service: str,
                          with_reflection: bool = True) -> health.HealthServicer:
    """Health (overall and for `service`, both SERVING) and, unless told otherwise,
    reflection (workers serve none: only the gateway is for clients to explore)."""
    servicer = health.HealthServicer()
    _add_health(server, servicer)
    for name in ("", service):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if with_reflection:
        names = (service, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    return servicer


class _Malformed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def _parse_health(raw: bytes):
    try:
        return health_pb2.HealthCheckRequest.FromString(raw)
    except Exception as e:  # noqa: BLE001  (DecodeError, RecursionError, ...)
        return _Malformed(e)


def _guarded(method):
    def run(request, context):
        if isinstance(request, _Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"not a valid HealthCheckRequest: {request.error}")
        return method(request, context)
    return run


def _add_health(server: grpc.Server, servicer: health.HealthServicer) -> None:
    """grpc.health.v1.Health, as its generated helper registers it but parsing requests
    itself: bytes that are not a HealthCheckRequest are INVALID_ARGUMENT (gRPC's own
    parser answers INTERNAL, a server fault, to a client's malformed message)."""
    reply = health_pb2.HealthCheckResponse.SerializeToString
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            _guarded(servicer.Check), request_deserializer=_parse_health,
            response_serializer=reply),
        "Watch": grpc.unary_stream_rpc_method_handler(
            _guarded(servicer.Watch), request_deserializer=_parse_health,
            response_serializer=reply),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(health.SERVICE_NAME, handlers),))


@dataclass(frozen=True)
class TLS:
    """PEM files: this process's certificate and key, the CA it trusts, and whether a
    server demands client certificates (mutual TLS). Empty paths: plaintext."""

    cert: str = ""
    key: str = ""
    ca: str = ""
    client_auth: bool = False

    @classmethod
    def from_args(cls, args) -> TLS:
        return cls(getattr(args, "tls_cert", ""), getattr(args, "tls_key", ""),
                   getattr(args, "tls_ca", ""), bool(getattr(args, "tls_client_auth", False)))

    @property
    def serving(self) -> bool:
        if bool(self.cert) != bool(self.key):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.client_auth and not (self.cert and self.ca):
            raise ValueError("--tls-client-auth needs --tls-cert, --tls-key and --tls-ca")
        return bool(self.cert)

    def server_credentials(self) -> grpc.ServerCredentials | None:
        if not self.serving:
            return None
        ca = _read(self.ca) if self.ca else None
        return grpc.ssl_server_credentials([(_read(self.key), _read(self.cert))],
                                           root_certificates=ca,
                                           require_client_auth=self.client_auth)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials to reach a TLS server: trust `ca` (or the system roots) and present
        this process's certificate when it has one (for servers that require it)."""
        pair = (_read(self.key), _read(self.cert)) if self.cert and self.key else (None, None)
        return grpc.ssl_channel_credentials(_read(self.ca) if self.ca else None, *pair)


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def bind(server: grpc.Server, host: str, port: int,
         credentials: grpc.ServerCredentials | None = None) -> int:
    """Bind host:port (port 0 picks a free one), with TLS when `credentials` are given,
    and return the port actually bound."""
    target = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    bound = (server.add_secure_port(target, credentials) if credentials is not None
             else server.add_insecure_port(target))
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    return bound


GATEWAY_SERVICE = pb.DESCRIPTOR.services_by_name["Gateway"].full_name
WORKER_SERVICE = pb.DESCRIPTOR.services_by_name["Worker"].full_name


def wait_for_stop_signal(poll: float = 0.1) -> int:
    """Block until SIGTERM or SIGINT arrives; return it. The handler only appends to a
    list: a handler that takes a lock (Event.set) deadlocks when a second signal lands
    while the first one's handler holds that lock."""
    import signal
    import time
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: received.append(signum))
    while not received:
        time.sleep(poll)
    return received[0]
