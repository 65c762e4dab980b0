"""`remotegrad status`: the cluster at a glance."""

from __future__ import annotations

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
    print(f"gateway  {address}")
    print(f"workers  {len(st.workers)}")
    for w in st.workers:
        print(f"  {w.address:<24} backend={w.backend or '?':<6} in_flight={w.in_flight}")
    print(f"cache    {st.cache_hits} hits / {st.cache_misses} misses (hit ratio {ratio})")
    return 0
