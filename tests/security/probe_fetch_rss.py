"""Probe for RELIABILITY.md (not a test): 16 concurrent full-speed FetchTensor streams
(4 tenants × 4) of a 256 MiB tensor through one gateway on loopback; prints how long they
took, the gateway's RSS peak and what it keeps after.

    .venv/bin/python tests/security/probe_fetch_rss.py

One redis-server and gateway, started and stopped here by pid. The figures before
server/fetch.py's give_back_large_buffers() were taken with its call in server/serve.py
left out.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from procs import start_redis, stop  # noqa: E402
from remotegrad.proto import codec  # noqa: E402
from remotegrad.proto import remotegrad_pb2 as pb  # noqa: E402
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc  # noqa: E402
from remotegrad.proto.store import RedisTensorStore  # noqa: E402
from sectools import Procs, as_tenant  # noqa: E402

MiB = 1 << 20
TOKENS = {f"tok-fetch-rss-{t}-0123456789": t for t in ("ann", "ben", "cat", "dan")}


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def main() -> None:
    redis = start_redis()
    procs = Procs(redis, Path(tempfile.mkdtemp()))
    try:
        gw = procs.gateway("--tokens", ",".join(f"{k}={t}" for k, t in TOKENS.items()))
        x = np.random.default_rng(0).standard_normal(64 * MiB, dtype=np.float32)
        msg = codec.encode_array(x)
        for tenant in TOKENS.values():
            RedisTensorStore(redis.url).put(tenant, msg)
        base, done = rss(gw.popen.pid), []

        def fetch(token):
            ch = grpc.insecure_channel(gw.address, options=[
                ("grpc.max_receive_message_length", -1)])
            stream = pb_grpc.GatewayStub(ch).FetchTensor(
                pb.FetchTensorRequest(hash=msg.hash), metadata=as_tenant(token), timeout=300)
            done.append(sum(len(c.data) for c in stream))
            ch.close()

        threads = [threading.Thread(target=fetch, args=(t,)) for t in TOKENS for _ in range(4)]
        start, most = time.monotonic(), 0
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            most = max(most, rss(gw.popen.pid) - base)
            time.sleep(0.01)
        whole = sum(n == len(msg.data) for n in done)
        print(f"16 fetches of 256 MiB: {whole} whole in {time.monotonic() - start:.1f} s, "
              f"gateway RSS peak +{most // MiB} MiB, after +{(rss(gw.popen.pid) - base) // MiB}"
              " MiB")
    finally:
        procs.close()
        stop(redis.proc)


if __name__ == "__main__":
    main()
