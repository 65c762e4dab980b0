"""The Worker gRPC service: Execute runs one graph; the process registers itself in Redis
with a heartbeat and, on SIGTERM, stops taking calls, drains and deregisters."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading

import grpc

from remotegrad.proto import grpc_server, keys
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.catalog import OpError
from remotegrad.proto.store import MemoryTensorStore, RedisTensorStore

from remotegrad.server import metrics

from . import backend as backends
from .compute import MissingTensorError, compute

log = logging.getLogger("remotegrad.worker")


class WorkerServicer(pb_grpc.WorkerServicer):
    def __init__(self, store, backend, address: str) -> None:
        self.store, self.backend, self.address = store, backend, address

    def Execute(self, request, context):  # noqa: N802 (gRPC method name)
        tenant = dict(context.invocation_metadata()).get("x-tenant", "default")
        try:
            resp = compute(request, self.store, tenant, self.backend)
        except MissingTensorError as e:
            context.set_trailing_metadata((("rg-missing-tensors", ",".join(e.digests)),))
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except OpError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except MemoryError:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "worker out of memory")
        resp.worker = self.address
        return resp


class Heartbeat(threading.Thread):
    """Keeps rg:v1:workers:{address} alive (TTL = 3 heartbeats) until stopped."""

    def __init__(self, redis_client, address: str, info: dict, every: float) -> None:
        super().__init__(daemon=True, name="heartbeat")
        self.redis, self.key, self.every = redis_client, keys.worker_key(address), every
        self.info = json.dumps({"address": address, **info})
        self.stopped = threading.Event()

    def beat(self) -> None:
        self.redis.set(self.key, self.info, px=int(self.every * 3000))

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.beat()
            except Exception as e:  # noqa: BLE001  (Redis down: keep serving, retry)
                log.warning("heartbeat failed: %s", e)

    def stop(self) -> None:
        self.stopped.set()
        try:
            self.redis.delete(self.key)
        except Exception as e:  # noqa: BLE001
            log.warning("could not deregister: %s", e)


def _advertised_host(host: str) -> str:
    """`auto`: this machine's address as others see it (a container's own IP)."""
    if host == "auto":
        import socket
        return socket.gethostbyname(socket.gethostname())
    return host


def serve(args) -> None:
    """Run a worker until SIGTERM/SIGINT."""
    be = backends.select(args.backend, args.device)
    if args.redis_url:
        store = RedisTensorStore(args.redis_url, ttl=args.tensor_ttl)
    else:
        store = MemoryTensorStore(args.memory_cache_bytes)
    server = grpc_server.make_server(args.max_inflight)
    port = grpc_server.bind(server, args.host, args.port)
    address = f"{_advertised_host(args.advertise_host)}:{port}"
    pb_grpc.add_WorkerServicer_to_server(WorkerServicer(store, be, address), server)
    health = grpc_server.add_standard_services(server, grpc_server.WORKER_SERVICE)
    metrics.serve(args.metrics_port)
    server.start()
    beat = None
    if args.redis_url:
        beat = Heartbeat(store.redis, address, {"backend": be.name, "pid": os.getpid()},
                         args.heartbeat)
        beat.beat()
        beat.start()
    log.info("worker %s serving (backend %s)", address, be.name)
    print(f"remotegrad worker listening on {address}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("worker %s draining", address)
    health.enter_graceful_shutdown()
    if beat:
        beat.stop()
    server.stop(grace=30).wait()
