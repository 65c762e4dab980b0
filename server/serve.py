"""Start a gateway process from its settings."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from remotegrad.proto import grpc_server, metrics, peer
from remotegrad.proto.kept import with_kept
from remotegrad.proto.store import MemoryTensorStore, RedisTensorStore

from . import fetch
from .cache import MemoryResultCache, RedisResultCache
from .gateway import Gateway, GatewayServicer, Limits, add_gateway_to_server
from .pool import WorkerPool
from .security import Auth, AuthInterceptor, RateLimiter, exposure_error, is_loopback
from .streams import StreamGate

log = logging.getLogger("remotegrad.gateway")

THREADS = 32  # the gateway's server threads
DRAIN_NOTICE = 2.0  # seconds NOT_SERVING is shown before the gateway stops accepting calls


def build_gateway(args) -> Gateway:
    tls = grpc_server.TLS.from_args(args)
    # TLS to the workers when a CA to verify them is configured.
    creds = dict(credentials=tls.channel_credentials() if tls.ca else None,
                 server_name=args.tls_server_name, secret=_worker_secret(args))
    if args.redis_url:
        # Kept tensors' durable copies are read through it too (proto/kept.py).
        store = with_kept(RedisTensorStore(args.redis_url, ttl=args.tensor_ttl))
        cache = RedisResultCache(store.redis, ttl=args.cache_ttl)
        pool = WorkerPool(store.redis, capacity=args.max_inflight + args.max_queue,
                          refresh=min(1.0, args.heartbeat), grace=2 * args.heartbeat, **creds)
    else:
        store = MemoryTensorStore(args.memory_cache_bytes)
        cache = MemoryResultCache(args.memory_cache_bytes)
        static = [a for a in args.worker_addrs.split(",") if a]
        pool = WorkerPool(None, static, capacity=args.max_inflight + args.max_queue, **creds)
    limits = Limits(args.max_nodes, args.max_tensor_bytes, args.inline_result_bytes,
                    args.max_memory_bytes, args.local_max_nodes, args.local_max_bytes,
                    kept_quota_bytes=args.kept_quota_bytes, kept_idle=args.kept_idle)
    limits = replace(limits, max_flops=args.max_flops, max_deadline=args.max_deadline,
                     max_calls_per_tenant=args.max_calls_per_tenant)
    return Gateway(store, cache, pool, limits, Auth.from_args(args))


def _worker_secret(args) -> str:
    try:
        return peer.check_secret(getattr(args, "worker_secret", ""))
    except ValueError as e:
        raise SystemExit(f"remotegrad gateway: cannot start: {e}") from None


def serve(args) -> None:
    refused = exposure_error(args.host, Auth.from_args(args),
                             getattr(args, "allow_anonymous", False))
    if refused:
        raise SystemExit(f"remotegrad gateway: cannot start: {refused}")
    gateway = build_gateway(args)
    if not gateway.auth.enabled and not is_loopback(args.host):
        log.warning("no tokens on %s (--allow-anonymous): every caller is the default tenant",
                    args.host)
    # With Redis the buckets are shared by every gateway on it, so the limit is the cluster's.
    limiter = RateLimiter(args.rate_limit, args.rate_burst, args.redis_url,
                          lambda op: metrics.REDIS_ERRORS.labels("rate_limit").inc()) \
        if args.rate_limit > 0 else None
    interceptors = []
    if gateway.auth.enabled or limiter is not None:
        interceptors.append(AuthInterceptor(
            gateway.auth, limiter,
            lambda method, code: metrics.CALLS.labels("gateway", method.rsplit("/", 1)[-1],
                                                      code).inc()))
    server = grpc_server.make_server(threads=THREADS, interceptors=interceptors,
                                     max_receive=args.max_request_bytes,
                                     max_connection_age_s=args.max_connection_age)
    # Streams may hold at most half the threads: health checks and calls keep the rest.
    streams = StreamGate(args.max_streams_per_tenant, THREADS // 2, args.max_tensor_bytes,
                         args.stream_idle_timeout)
    fetch.give_back_large_buffers()  # RSS follows what the streams hold (server/fetch.py)
    # What all fetches hold at once; a waiting one outlasts a stalled holder's idle timeout.
    fetch.IN_FLIGHT = fetch.InFlight(args.fetch_bytes_in_flight,
                                     args.stream_idle_timeout + fetch.WAIT_MARGIN)
    add_gateway_to_server(GatewayServicer(gateway, streams), server)
    health = grpc_server.add_standard_services(server, grpc_server.GATEWAY_SERVICE)
    tls = grpc_server.TLS.from_args(args)
    port = grpc_server.bind(server, args.host, args.port, tls.server_credentials())
    metrics.serve(args.metrics_port, args.host)
    server.start()
    print(f"remotegrad gateway listening on {args.host}:{port}"
          f"{' (TLS)' if tls.serving else ''}{' (tokens)' if gateway.auth.enabled else ''}",
          flush=True)
    grpc_server.wait_for_stop_signal()
    stop_started = time.monotonic()
    log.info("gateway draining (within %.0fs)", args.stop_grace)
    # NOT_SERVING while still accepting calls, so that load balancers probing health move
    # away before the port closes; then the rest of the grace for the calls in flight.
    health.enter_graceful_shutdown()
    time.sleep(min(DRAIN_NOTICE, args.stop_grace / 4))
    server.stop(grace=max(0.0, args.stop_grace - (time.monotonic() - stop_started))).wait()
    gateway.pool.close()
