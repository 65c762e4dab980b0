"""`remotegrad status`: the cluster at a glance; `remotegrad health`: one health probe."""

from __future__ import annotations

import json
import os

import grpc

from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc


def status(args) -> int:
    address = args.address or os.environ.get("REMOTEGRAD_ADDR") or "localhost:50051"
    # The SDK's variables: a token when the gateway wants one, a CA when it serves TLS.
    token = os.environ.get("REMOTEGRAD_TOKEN")
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    ca = os.environ.get("REMOTEGRAD_TLS_CA")
    channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(open(ca, "rb").read()))
               if ca else grpc.insecure_channel(address))
    with channel:
        try:
            st = pb_grpc.GatewayStub(channel).ClusterStatus(pb.ClusterStatusRequest(), timeout=5,
                                                            metadata=metadata)
        except grpc.RpcError as e:
            print(f"cannot reach remotegrad gateway at {address}: {e.details()}")
            return 1
    lookups = st.cache_hits + st.cache_misses
    ratio = f"{st.cache_hits / lookups:.1%}" if lookups else "n/a"
    # A tenant's token sees its own (server/scope.py); an operator's (`token=name:operator`,
    # or any caller of a gateway without tokens) the whole cluster.
    tenant_view = st.scope == "tenant"
    print(f"gateway  {address}")
    print(f"workers  {len(st.workers)}")
    if tenant_view:
        backends = sorted({w.backend or "?" for w in st.workers})
        print(f"  backends: {', '.join(backends) or '-'} (a tenant's view: addresses and load "
              "need an operator token, `token=name:operator`)")
    for w in st.workers if not tenant_view else ():
        print(f"  {w.address:<24} backend={w.backend or '?':<6} in_flight={w.in_flight}")
    whose = "your calls: " if tenant_view else ""
    print(f"cache    {whose}{st.cache_hits} hits / {st.cache_misses} misses (hit ratio {ratio})")
    _print_restarts(address)
    return 0


_LOCAL = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}


def supervised(address: str) -> dict | None:
    """The restart counts of the `cluster up` serving `address` on this machine, if one
    does (it keeps them in a file of its own, see server/supervisor.py)."""
    from .supervisor import state_path
    host, _, port = address.rpartition(":")
    if host not in _LOCAL or not port.isdigit():
        return None
    try:
        with open(state_path(int(port))) as f:
            state = json.load(f)
        os.kill(state["pid"], 0)  # a file left by a cluster that is gone says nothing
    except (OSError, ValueError, KeyError):
        return None
    return state


def _print_restarts(address: str) -> None:
    state = supervised(address)
    if state is None:
        return
    children = state["children"]
    total = sum(c["restarts"] for c in children)
    print(f"cluster up (pid {state['pid']}): {len(children)} processes, {total} restarts")
    for c in children:
        if c["restarts"] or c["pid"] is None:
            note = f", {c['crash_loops']} in a crash loop" if c["crash_loops"] else ""
            pid = c["pid"] if c["pid"] is not None else "down, restarting"
            print(f"  {c['name']:<10} restarts={c['restarts']}{note} last exit: "
                  f"{c['last_exit'] or '-'} (pid {pid})")


def health(args) -> int:
    """Exit 0 when the server at --address reports SERVING for --service, else 1 (for
    container healthchecks). TLS as the server's own settings say: the variables
    REMOTEGRAD_TLS_CA (and _CERT/_KEY for servers that want a client certificate)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    ca, cert, key = (os.environ.get(f"REMOTEGRAD_TLS_{n}") for n in ("CA", "CERT", "KEY"))
    if ca:
        pair = (open(key, "rb").read(), open(cert, "rb").read()) if cert and key else ()
        creds = grpc.ssl_channel_credentials(open(ca, "rb").read(), *pair)
        options = ([("grpc.ssl_target_name_override", args.server_name)]
                   if args.server_name else [])
        channel = grpc.secure_channel(args.address, creds, options=options)
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
        except grpc.RpcError as e:
            print(f"{args.address}: {e.code().name} {e.details()}")
            return 1
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{args.address}: {name}")
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1
