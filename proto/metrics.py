"""Prometheus metrics of the gateway and the workers (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

CALLS = Counter("remotegrad_calls_total", "gRPC calls handled", ["service", "method", "code"])
LATENCY = Histogram("remotegrad_call_seconds", "gRPC call latency", ["service", "method"],
                    buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30))
CACHE = Counter("remotegrad_cache_total", "result cache lookups", ["result"])
BYTES_IN = Counter("remotegrad_tensor_bytes_in_total", "tensor bytes received from clients")
BYTES_OUT = Counter("remotegrad_tensor_bytes_out_total", "tensor bytes returned to clients")
REDIS_ERRORS = Counter("remotegrad_redis_errors_total", "Redis operations that failed", ["op"])
WORKERS = Gauge("remotegrad_workers", "live workers the gateway knows")
INFLIGHT = Gauge("remotegrad_worker_inflight", "calls running on a worker", ["worker"])
CANCELLED = Counter("remotegrad_cancelled_total", "calls stopped before they finished because "
                    "the caller went away or the deadline passed", ["service"])
RUNNING = Gauge("remotegrad_running_calls", "calls being computed now", ["service"])
LOCAL = Counter("remotegrad_local_calls_total", "small graphs the gateway ran itself")
RETRIES = Counter("remotegrad_retries_total", "calls retried on another worker")


def serve(port: int, host: str = "127.0.0.1") -> None:
    """The /metrics endpoint on host:port (0: none)."""
    if port:
        start_http_server(port, addr=host)


def hits() -> float:
    return CACHE.labels("hit")._value.get()


def misses() -> float:
    return CACHE.labels("miss")._value.get()
