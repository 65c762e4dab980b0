"""Every setting of the gateway, the workers and the local cluster, declared once.

Each setting is a command-line flag (`--redis-url`) and an environment variable
(`REMOTEGRAD_REDIS_URL`); the flag wins. The README's configuration table is checked
against this list by a test.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from typing import Any

GATEWAY, WORKER, CLUSTER, STATUS = "gateway", "worker", "cluster", "status"


def boolean(value) -> bool:
    """A flag or variable read as a boolean: 1/true/yes/on or 0/false/no/off/empty."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(kib|mib|gib|tib)?")
_UNIT = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def memory_size(value) -> int | float:
    """Bytes (`1073741824`, `512MiB`, `4GiB`: an int) or, with a decimal point, a fraction
    in (0, 1] of the memory there is (`0.8`: a float)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower().replace(" ", "")
    m = _SIZE.fullmatch(text)
    if m is None:
        raise argparse.ArgumentTypeError(
            f"not a memory size: {value!r} (bytes such as 4294967296 or 4GiB, or a fraction "
            "such as 0.8)")
    number, unit = m.groups()
    if unit:
        return int(float(number) * _UNIT[unit])
    if "." in number:
        fraction = float(number)
        if not 0.0 < fraction <= 1.0:
            raise argparse.ArgumentTypeError(
                f"memory fraction {value!r} is not in (0, 1] (bytes have no decimal point)")
        return fraction
    return int(number)


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    commands: tuple[str, ...]
    type: type = str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "REMOTEGRAD_" + self.name.upper()


SETTINGS = [
    Setting("host", "127.0.0.1", "address to bind (cluster: the gateway's; its workers bind "
            "--advertise-host)", (GATEWAY, WORKER, CLUSTER)),
    Setting("port", 50051, "gRPC port; 0 binds any free port", (GATEWAY, WORKER, CLUSTER), int),
    Setting("redis_url", "", "Redis for the tensor store, result cache and worker registry: "
            "redis://host:port/0, rediss:// (TLS), unix:///path, "
            "redis+sentinel://host:port[,host:port...]/SERVICE[/DB] (the primary the "
            "Sentinels name, followed across failovers) or "
            "redis+cluster://host:port[,host:port...] (a Redis Cluster); empty: in-process "
            "cache (cluster: start redis-server from PATH if found, on a unix socket in a "
            "0700 folder with a generated password). The URL may hold a password "
            "(redis://:pw@host:port/0): set the variable, not the flag",
            (GATEWAY, WORKER, CLUSTER, STATUS)),
    Setting("workers", 2, "number of workers to start", (CLUSTER,), int),
    Setting("worker_addrs", "", "comma-separated worker addresses, used when there is no "
            "Redis registry", (GATEWAY,)),
    Setting("advertise_host", "127.0.0.1", "host name a worker registers under (its "
            "address as the gateway reaches it; cluster: also where its workers listen, `auto` "
            "this machine's address)", (WORKER, CLUSTER)),
    Setting("backend", "numpy", "array backend: numpy; cupy (a CUDA GPU through CuPy, see "
            "GPU workers; without CuPy or a visible GPU the worker does not start); or auto "
            "(cupy when CuPy imports and sees a GPU, else numpy)", (WORKER, CLUSTER)),
    Setting("device", 0, "GPU index for the cupy backend (among those CUDA_VISIBLE_DEVICES "
            "shows); out of range, the worker does not start", (WORKER, CLUSTER), int),
    Setting("memory_limit", 0, "a worker's memory budget, shared by the computations it runs "
            "at once, each counted at its peak as estimated from shapes; bytes (4294967296, "
            "4GiB) or a fraction (0.8) of the GPU's memory (cupy) or of physical memory "
            "(numpy); 0: no limit (cupy: the card's memory). A worker refuses a graph larger "
            "than the budget before fetching any leaf (RESOURCE_EXHAUSTED), holds one that "
            "does not fit beside those running until they leave room (--budget-wait, then "
            "RESOURCE_EXHAUSTED), and advertises its limit, so that the gateway routes "
            "graphs only to workers they fit; on cupy it also caps CuPy's memory pool",
            (WORKER, CLUSTER), memory_size),
    Setting("budget_wait", 30.0, "most seconds a worker holds a computation that does not "
            "fit in its --memory-limit beside those running, waiting for room, before it "
            "refuses it (RESOURCE_EXHAUSTED); never past the call's own deadline (it refuses "
            "0.1 s before); 0: refuse at once", (WORKER, CLUSTER), float),
    Setting("metrics_port", 0, "port of the Prometheus /metrics endpoint; 0 disables it "
            "(cluster: gateway on this port, workers on the following ones)",
            (GATEWAY, WORKER, CLUSTER), int),
    Setting("cache_ttl", 3600, "seconds a cached result lives", (GATEWAY, CLUSTER), int),
    Setting("tensor_ttl", 3600, "seconds a stored leaf tensor lives", (GATEWAY, WORKER, CLUSTER),
            int),
    Setting("memory_cache_bytes", 1 << 30, "size of the in-process result cache and tensor "
            "store used without Redis. On a worker it bounds two caches apart, each to this "
            "size: its LRU of leaves and the kept results it holds whose durable copies "
            "are written (up to 2x this in all, plus kept results whose copies are not "
            "written yet, which are never evicted); --memory-limit shrinks both under "
            "pressure", (GATEWAY, WORKER, CLUSTER), int),
    Setting("redis_maxmemory", "1gb", "maxmemory of the redis-server the cluster starts "
            "(evicting with volatile-lru: only keys with a TTL, never kept tensors)", (CLUSTER,)),
    Setting("max_inflight", 4, "calls one worker runs at once; more wait in its queue",
            (GATEWAY, WORKER, CLUSTER), int),
    Setting("max_queue", 64, "calls waiting per worker before RESOURCE_EXHAUSTED (a gateway "
            "counts its own; a worker refuses at once any call beyond --max-inflight plus "
            "this many, whichever gateways sent them, and gateways then try another worker)",
            (GATEWAY, WORKER, CLUSTER), int),
    Setting("max_nodes", 1_000_000, "most nodes a graph may have", (GATEWAY, CLUSTER), int),
    Setting("max_tensor_bytes", 4 << 30, "largest tensor a graph may produce or send, "
            "estimated from shapes before any allocation", (GATEWAY, CLUSTER), int),
    Setting("inline_result_bytes", 64 << 20, "results larger than this are kept in the "
            "tensor store and streamed to the client on request", (GATEWAY, CLUSTER), int),
    Setting("local_max_nodes", 64, "graphs of at most this many nodes, all leaves inline and "
            "small (--local-max-bytes), nothing kept, run in the gateway itself: one hop, no "
            "worker and no result cache (computing them costs the gateway less than "
            "forwarding them); 0 sends every graph to a worker",
            (GATEWAY, CLUSTER), int),
    Setting("local_max_bytes", 64 << 10, "inline leaf bytes a graph may carry to run in "
            "the gateway", (GATEWAY, CLUSTER), int),
    Setting("heartbeat", 2.0, "seconds between worker heartbeats; a worker is dropped after "
            "3 missed", (GATEWAY, WORKER, CLUSTER), float),
    Setting("log_level", "INFO", "logging level", (GATEWAY, WORKER, CLUSTER)),
    Setting("stop_grace", 15.0, "seconds a gateway or worker takes at most to stop after "
            "SIGTERM: it reports NOT_SERVING at once and keeps serving a while so that "
            "callers move away (a worker leaves the registry and waits up to 3 heartbeats "
            "for gateways to notice; a gateway waits 2 s), then finishes the calls it has "
            "until the grace is spent (cluster: what its processes get, plus 5 s before "
            "SIGKILL)", (GATEWAY, WORKER, CLUSTER), float),
    Setting("restart_backoff_max", 30.0, "most seconds `cluster up` waits before starting "
            "again a process that exited (the wait starts at 0.5 s and doubles with each "
            "exit within 10 s of starting)", (CLUSTER,), float),
    Setting("max_memory_bytes", 8 << 30, "most memory one computation may need at its peak "
            "(every live tensor, gradients expanded), estimated from shapes before any "
            "allocation; more is RESOURCE_EXHAUSTED", (GATEWAY, CLUSTER), int),
    Setting("max_request_bytes", 64 << 20, "largest gRPC message the gateway accepts, "
            "health checks and unauthenticated calls included (gRPC refuses a larger one "
            "from its length prefix, before buffering it); tensors over 4 MiB travel as "
            "chunk streams, so this bounds a graph and its small inline leaves",
            (GATEWAY, CLUSTER), int),
    Setting("max_connection_age", 300.0, "seconds after which the gateway closes a client's "
            "connection (calls on it get 30 s to finish) so that clients reconnect and spread "
            "over gateways added since; 0: never", (GATEWAY, CLUSTER), float),
    Setting("tls_cert", "", "PEM certificate this server presents; set with --tls-key to "
            "serve TLS (the gateway also presents it to workers when they require client "
            "certificates)", (GATEWAY, WORKER, CLUSTER)),
    Setting("tls_key", "", "PEM private key of --tls-cert", (GATEWAY, WORKER, CLUSTER)),
    Setting("tls_ca", "", "PEM CA bundle: the gateway verifies workers against it (TLS to "
            "workers when set); with --tls-client-auth, the clients a server accepts",
            (GATEWAY, WORKER, CLUSTER, STATUS)),
    Setting("tls_client_auth", False, "require a client certificate signed by --tls-ca "
            "(mutual TLS)", (GATEWAY, WORKER, CLUSTER), boolean),
    Setting("tls_server_name", "", "name the gateway expects on worker certificates "
            "(default: the host a worker registered under)", (GATEWAY, CLUSTER)),
    Setting("tokens_file", "", "file of `token=tenant` lines; when set (or --tokens), every "
            "call but health checks needs `authorization: Bearer <token>`",
            (GATEWAY, CLUSTER)),
    Setting("tokens", "", "`token=tenant` pairs separated by commas or newlines (prefer "
            "the variable or --tokens-file: flags show in process listings; cluster up "
            "hands them to its gateway through its environment)", (GATEWAY, CLUSTER)),
    Setting("worker_secret", "", "shared secret of the gateway→worker hop (16+ printable "
            "ASCII characters): the gateway sends it on every call to a worker; a worker "
            "with one refuses any call without it (UNAUTHENTICATED, compared in constant "
            "time; health stays open). Empty on a worker: any process that reaches it may "
            "call it (a warning is logged). Set the variable, not the flag (flags show in "
            "process listings). cluster up hands its gateway and workers this variable's value, "
            "or a secret it generates (32 random bytes)", (GATEWAY, WORKER)),
    Setting("max_streams_per_tenant", 4, "tensor streams (PutTensor, FetchTensor) one "
            "tenant may have open at "
            "once (the gateway: 16 in all, half its threads); more are RESOURCE_EXHAUSTED. "
            "The bytes a tenant's open uploads hold are bounded by --max-tensor-bytes",
            (GATEWAY, CLUSTER), int),
    Setting("fetch_bytes_in_flight", 128 << 20, "bytes of tensor all FetchTensor streams of "
            "a gateway hold at once (each a 32 MiB stored chunk until its last message is "
            "sent; a tenant at most half); a fetch without room waits for it, first come "
            "first served, and is RESOURCE_EXHAUSTED after --stream-idle-timeout plus 5 s",
            (GATEWAY, CLUSTER), int),
    Setting("stream_idle_timeout", 30.0, "seconds a tensor stream may go without a chunk "
            "sent (PutTensor) or taken (FetchTensor) before the gateway cancels it (and "
            "900 s in all)", (GATEWAY, CLUSTER), float),
    Setting("allow_anonymous", False, "let a gateway without tokens listen on a non-loopback "
            "--host (every caller is then the default tenant); without it such a gateway "
            "refuses to start", (GATEWAY, CLUSTER), boolean),
    Setting("rate_limit", 0.0, "calls per second each tenant may make (a token bucket, "
            "shared through Redis by the gateways on it; per gateway without Redis or while "
            "it is down); 0: unlimited", (GATEWAY, CLUSTER), float),
    Setting("rate_burst", 0, "calls a tenant may make at once above --rate-limit "
            "(default: one second's worth)", (GATEWAY, CLUSTER), int),
    Setting("max_flops", 1e12, "most floating-point operations one computation may cost, "
            "estimated from shapes before it runs (gradients included; an einsum by its "
            "optimised contraction path); more is RESOURCE_EXHAUSTED; 0: no limit",
            (GATEWAY, WORKER, CLUSTER), float),
    Setting("max_deadline", 300.0, "most seconds a Compute call runs: a call without a "
            "deadline, or with a longer one, gets this one (its worker is cancelled then)",
            (GATEWAY, CLUSTER), float),
    Setting("max_calls_per_tenant", 16, "Compute calls one tenant may have running in a "
            "gateway at once (it has 32 threads); more are RESOURCE_EXHAUSTED at once (0: no "
            "bound)",
            (GATEWAY, CLUSTER), int),
    Setting("kept_quota_bytes", 512 << 20, "bytes of kept tensors (parameters, optimiser "
            "state: what the SDK holds by reference) each tenant may have durably copied in "
            "Redis, where no eviction and no TTL removes them; a call keeping more is "
            "RESOURCE_EXHAUSTED, nobody's data is evicted for it; 0: no quota. Size Redis's "
            "maxmemory for the tenants' quotas and the cache", (GATEWAY, CLUSTER), int),
    Setting("kept_idle", 7 * 86400.0, "seconds a tenant may make no call before its kept "
            "tensors' durable copies are released (the SDK releases what it drops at once); "
            "0: never", (GATEWAY, CLUSTER), float),
]


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    for s in SETTINGS:
        if command in s.commands:
            env = os.environ.get(s.env)
            default = s.type(env) if env is not None else s.default
            parser.add_argument(s.flag, type=s.type, default=default,
                                help=f"{s.help} (env {s.env}, default {s.default!r})")
