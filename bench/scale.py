"""Scale: remotegrad's throughput with 1, 2 and 4 workers on this machine, and where the
CPU of each call goes (gateway, workers, Redis, clients), read from /proc for the
processes the cluster started. The CPU seconds per call are what the projection to many
machines in BENCHMARKS.md is built on.

    .venv/bin/python bench/scale.py [--seconds 6] [--clients 8]
"""

from __future__ import annotations

import argparse
import sys

from _common import closed_loop_throughput, cpu_seconds, environment, local_cluster

from remotegrad.loadtest._cluster import process_tree



def role(cmdline: str) -> str:
    if "redis-server" in cmdline:
        return "redis"
    for r in ("gateway", "worker"):
        if f" {r} " in f" {cmdline} ":
            return r
    return "other"


def measure(workers: int, clients: int, seconds: float, workload: str, **options) -> dict:
    with local_cluster(workers) as address:
        procs = process_tree(address.pid)
        before = {p: cpu_seconds(p) for p in procs}
        cps, p50, p99 = closed_loop_throughput(address, clients, seconds, workload, **options)
        used: dict[str, float] = {}
        for p, cmd in procs.items():
            used[role(cmd)] = used.get(role(cmd), 0.0) + cpu_seconds(p) - before[p]
    # the clients' warm-up is inside the window too; the share is what matters
    calls = cps * seconds
    return {"workers": workers, "calls_per_s": cps, "p50": p50, "p99": p99,
            "cpu_ms_per_call": {k: v / calls * 1e3 for k, v in used.items()} if calls else {}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    print(environment())
    for workload, clients, options in (("seed", args.clients, {}),
                                       ("mlp", max(2, args.clients // 2), {"hidden": 256})):
        print(f"\n{workload}: {clients} client processes, closed loop, {args.seconds:g}s "
              "per level")
        print(f"{'workers':>7} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}   CPU ms per call "
              "(gateway / workers / redis)")
        base = None
        for w in (1, 2, 4):
            r = measure(w, clients, args.seconds, workload, **options)
            c = r["cpu_ms_per_call"]
            base = base or r["calls_per_s"]
            print(f"{w:>7} {r['calls_per_s']:>9.1f} {r['p50']:>8.2f} {r['p99']:>8.2f}   "
                  f"{c.get('gateway', 0):.3f} / {c.get('worker', 0):.3f} / "
                  f"{c.get('redis', 0):.3f}   ({r['calls_per_s'] / base:.2f}x of 1 worker)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
