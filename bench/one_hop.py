"""The gateway's one-hop path for small graphs (--local-max-nodes) against the default
two-hop path, on the seed tutorial's gradient call through the SDK.

Each round runs the same number of calls on both clusters (fresh random inputs, so no
call is a cache hit), alternating, so both see the same machine load.

    .venv/bin/python bench/one_hop.py [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from _common import environment, local_cluster

import remotegrad as torch


def seed_call(rng) -> float:
    x = torch.from_numpy(rng.standard_normal((3, 3)).astype(np.float32)).requires_grad_()
    out = ((x * 2) ** 3).sum()
    out.backward()
    t = time.perf_counter()
    x.grad.tolist()  # the round trip: forward and gradient in one call
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(environment())
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"two hops (default)": [], "one hop (--local-max-nodes 64)": []}
    with local_cluster(2) as two, local_cluster(2, "--local-max-nodes", "64") as one:
        for _ in range(args.rounds):
            for name, address in zip(times, (two, one)):
                torch.connect(str(address))
                for _ in range(10):
                    seed_call(rng)  # warm up the channel
                times[name] += [seed_call(rng) for _ in range(args.calls)]
    base = statistics.median(times["two hops (default)"])
    print(f"{'path':<32} {'p50 ms':>8} {'p99 ms':>8} {'vs default':>10}")
    for name, ts in times.items():
        ts.sort()
        p50, p99 = statistics.median(ts), ts[int(0.99 * (len(ts) - 1))]
        print(f"{name:<32} {p50 * 1e3:>8.3f} {p99 * 1e3:>8.3f} {p50 / base:>9.2f}x")


if __name__ == "__main__":
    main()
