"""What every remotegrad gRPC server carries: grpc.health.v1, server reflection, no
message-size ceiling (large tensors are bounded by explicit limits instead)."""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import remotegrad_pb2 as pb

SERVER_OPTIONS = [("grpc.max_send_message_length", -1),
                  ("grpc.max_receive_message_length", -1),
                  ("grpc.so_reuseport", 0)]


def make_server(threads: int, max_concurrent: int | None = None, interceptors=()) -> grpc.Server:
    return grpc.server(futures.ThreadPoolExecutor(max_workers=threads),
                       options=SERVER_OPTIONS, maximum_concurrent_rpcs=max_concurrent,
                       interceptors=list(interceptors))


def add_standard_services(server: grpc.Server, service: str) -> health.HealthServicer:
    """Health (overall and for `service`, both SERVING) and reflection."""
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", service):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    names = (service, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    return servicer


def bind(server: grpc.Server, host: str, port: int) -> int:
    """Bind host:port (port 0 picks a free one) and return the port actually bound."""
    bound = server.add_insecure_port(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}")
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    return bound


GATEWAY_SERVICE = pb.DESCRIPTOR.services_by_name["Gateway"].full_name
WORKER_SERVICE = pb.DESCRIPTOR.services_by_name["Worker"].full_name
