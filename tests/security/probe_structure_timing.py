"""Probe for RELIABILITY.md's threat model (not a test): the residual timing channel of the
shared plan caches (issue 15, item 12). Bob runs a graph of some structure; alice then
runs, with values of her own (so no result of bob's can be a hit for her), a graph of the
same structure and one of a structure nobody ran. Prints alice's two latencies per trial:
the structure bob used is planned and compiled already, in the gateway and the worker.

    .venv/bin/python tests/security/probe_structure_timing.py [trials]

One redis-server, gateway and worker on loopback, started and stopped here by pid.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from procs import start_redis, stop  # noqa: E402
from remotegrad.proto import codec  # noqa: E402
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc  # noqa: E402
from remotegrad.proto.codec import WireNode  # noqa: E402
from sectools import Procs, as_tenant, wait_for_workers  # noqa: E402

OPS = ("neg", "exp", "tanh", "sin", "cos", "abs")


def chain(x: np.ndarray, pattern: int, length: int = 120):
    """A chain of unary ops whose sequence `pattern` chooses: one structure per pattern."""
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": x.dtype.name, "shape": x.shape})]
    rng = np.random.default_rng(pattern)
    for i in range(1, length + 1):
        nodes.append(WireNode(i, OPS[int(rng.integers(len(OPS)))], (i - 1,), {}))
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [length])


def timed(stub, req, token: str) -> float:
    start = time.perf_counter()
    stub.Compute(req, metadata=as_tenant(token), timeout=60)
    return time.perf_counter() - start


def main(trials: int) -> None:
    redis = start_redis()
    procs = Procs(redis, Path(tempfile.mkdtemp(prefix="probe-")))
    try:
        gw = procs.gateway("--tokens", "ta=alice,tb=bob")
        procs.worker()
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address))
        wait_for_workers(stub, 1, "ta")
        timed(stub, chain(np.ones(4, np.float32), 10_000), "ta")  # warm the processes
        seen, unseen = [], []
        for t in range(trials):
            used, fresh = 2 * t + 1, 2 * t + 2  # structures never run before this trial
            timed(stub, chain(np.full(4, 0.5, np.float32), used), "tb")  # bob's
            mine = np.random.default_rng(t).standard_normal(4).astype(np.float32)
            seen.append(timed(stub, chain(mine, used), "ta"))
            unseen.append(timed(stub, chain(mine, fresh), "ta"))
            print(f"trial {t}: structure bob ran {seen[-1] * 1e3:.1f} ms, "
                  f"one nobody ran {unseen[-1] * 1e3:.1f} ms")
        told = sum(s < u for s, u in zip(seen, unseen))
        print(f"median {statistics.median(seen) * 1e3:.1f} ms vs "
              f"{statistics.median(unseen) * 1e3:.1f} ms; the structure bob ran was faster "
              f"in {told} of {trials} trials")
    finally:
        procs.close()
        stop(redis.proc)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
