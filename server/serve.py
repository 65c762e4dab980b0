"""Start a gateway process from its settings."""

from __future__ import annotations

import logging
import signal
import threading

from remotegrad.proto import grpc_server
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.store import MemoryTensorStore, RedisTensorStore

from . import metrics
from .cache import MemoryResultCache, RedisResultCache
from .gateway import Gateway, GatewayServicer, Limits
from .pool import WorkerPool

log = logging.getLogger("remotegrad.gateway")


def build_gateway(args) -> Gateway:
    if args.redis_url:
        store = RedisTensorStore(args.redis_url, ttl=args.tensor_ttl)
        cache = RedisResultCache(store.redis, ttl=args.cache_ttl)
        pool = WorkerPool(store.redis, capacity=args.max_inflight + args.max_queue,
                          refresh=min(1.0, args.heartbeat), grace=2 * args.heartbeat)
    else:
        store = MemoryTensorStore(args.memory_cache_bytes)
        cache = MemoryResultCache(args.memory_cache_bytes)
        static = [a for a in args.worker_addrs.split(",") if a]
        pool = WorkerPool(None, static, capacity=args.max_inflight + args.max_queue)
    return Gateway(store, cache, pool, Limits(args.max_nodes, args.max_tensor_bytes,
                                              args.inline_result_bytes))


def serve(args) -> None:
    gateway = build_gateway(args)
    server = grpc_server.make_server(threads=32)
    pb_grpc.add_GatewayServicer_to_server(GatewayServicer(gateway), server)
    health = grpc_server.add_standard_services(server, grpc_server.GATEWAY_SERVICE)
    port = grpc_server.bind(server, args.host, args.port)
    metrics.serve(args.metrics_port, args.host)
    server.start()
    print(f"remotegrad gateway listening on {args.host}:{port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    health.enter_graceful_shutdown()
    server.stop(grace=10).wait()
    gateway.pool.close()
