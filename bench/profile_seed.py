"""Where the time of one seed call goes: client build, serialization, gateway validation
and fingerprint, Redis round trips, worker execution, the two gRPC hops.

Three views, all in one run:
1. a decomposition: each stage timed on its own in this process (p50 of many), set against
   the measured p50 of the whole call through a real cluster;
2. py-spy on the gateway and a worker while a single client calls in a closed loop: the
   functions that hold their CPU (self time, idle threads excluded);
3. cProfile of the client (the SDK) over the same calls.

    .venv/bin/python bench/profile_seed.py [--calls 2000] [--spy-seconds 8]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np
from _common import Client, environment, local_cluster, time_calls

from remotegrad.loadtest._cluster import free_port, process_tree
from remotegrad.loadtest.workloads import SeedWorkload
from remotegrad.proto import remotegrad_pb2 as pb


def sdk_seed(rtorch):
    x = rtorch.randn(3, 3, requires_grad=True)
    out = ((x * 2) ** 3).sum()
    out.backward()
    return x.grad.numpy()


def redis_round_trips(n: int) -> dict[str, float]:
    """p50 (ms) of the Redis commands a seed miss makes, against a redis-server of our own."""
    import redis
    exe = shutil.which("redis-server")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                r.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        tensor = SeedWorkload(seed=1).next_request().tensors[0].SerializeToString()
        out = {}
        for name, fn in (("SET tensor (EX)", lambda: r.set("rg:t", tensor, ex=3600)),
                         ("GET result (miss)", lambda: r.get("rg:nothing")),
                         ("SET result (EX)", lambda: r.set("rg:r", b"x" * 100, ex=3600))):
            out[name] = time_calls(name, fn, n).p50
        r.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def decomposition(n: int) -> list[tuple[str, float]]:
    import remotegrad as rtorch
    from remotegrad.proto.provenance import fingerprint
    from remotegrad.server.gateway import Gateway
    from remotegrad.worker.compute import MemoryTensorStore, compute

    rtorch.connect("local")
    w = SeedWorkload(seed=2)
    reqs = [w.next_request() for _ in range(n + 50)]
    it = iter(reqs)
    store = MemoryTensorStore()
    t_local = time_calls("sdk local", lambda: sdk_seed(rtorch), n).p50
    t_compute = time_calls("compute", lambda: compute(next(it), store), n).p50
    req = reqs[0]
    resp = compute(req, MemoryTensorStore())
    raw_req, raw_resp = req.SerializeToString(), resp.SerializeToString()
    t_ser = (time_calls("ser", req.SerializeToString, n).p50
             + time_calls("parse", lambda: pb.ComputeRequest.FromString(raw_req), n).p50
             + time_calls("ser r", resp.SerializeToString, n).p50
             + time_calls("parse r", lambda: pb.ComputeResponse.FromString(raw_resp), n).p50)
    from remotegrad.proto.store import MemoryTensorStore as Store
    from remotegrad.server.cache import MemoryResultCache
    gw = Gateway(Store(), MemoryResultCache(), None)
    t_validate = time_calls("validate", lambda: gw.validate(req), n).p50
    decoded = gw.validate(req)
    t_fp = time_calls("fingerprint", lambda: fingerprint(decoded.nodes, decoded.targets),
                      n).p50
    rt = redis_round_trips(n)
    redis_total = rt["SET tensor (EX)"] * 2 + rt["GET result (miss)"] + rt["SET result (EX)"]
    return [
        ("client: SDK graph build + request assembly", t_local - t_compute),
        ("serialization: request and response, both hops (x2)", 2 * t_ser),
        ("gateway: validate (decode, shape inference, hash check)", t_validate),
        ("gateway: fingerprint", t_fp),
        ("redis: gateway SET leaf + GET result + SET result, worker SET leaf", redis_total),
        ("worker: decode + engine (lower grad, plan, run) + encode", t_compute),
    ]


def spy(pid: int, seconds: float, out_path: str) -> subprocess.Popen | None:
    exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                             "--rate", "500", "--format", "raw", "--output", out_path,
                             "--nonblocking", "--gil"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def top_self(path: str, k: int = 8) -> list[tuple[str, float]]:
    counts: Counter[str] = Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            leaf = stack.split(";")[-1]
            counts[leaf.split(" (")[0] + " (" + leaf.split(" (")[-1].split(":")[0].rsplit(
                "/", 1)[-1] if " (" in leaf else leaf] += int(n)
            total += int(n)
    return [(name, c / total) for name, c in counts.most_common(k)] if total else []


def top_inclusive(path: str, k: int = 10) -> list[tuple[str, float]]:
    """remotegrad's own functions (server/, worker/, proto/, client/) by inclusive share of
    the samples: which stage of ours the process is in."""
    counts: Counter[str] = Counter()
    total = 0
    ours = ("server/", "worker/", "proto/", "client/")
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            total += int(n)
            seen = set()
            for frame in stack.split(";"):
                if " (" in frame and any(o in frame for o in ours):
                    name = frame.split(" (")[0]
                    if name not in seen:
                        seen.add(name)
                        counts[name] += int(n)
    return [(name, c / total) for name, c in counts.most_common(k)] if total else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--spy-seconds", type=float, default=8.0)
    ap.add_argument("--spy-workload", choices=("seed", "mlp"), default="seed",
                    help="what the client calls while py-spy samples the cluster (mlp: "
                         "the 784-256-256-10 gradient through the stubs)")
    args = ap.parse_args()
    print(environment())
    parts = decomposition(args.calls)

    import remotegrad as rtorch
    tmp = tempfile.mkdtemp(prefix="rg-prof-")
    with local_cluster(2) as address:
        client = Client(address)
        w = SeedWorkload(seed=3)
        miss = time_calls("seed miss", lambda: client.compute(w.next_request()), args.calls)
        from floor import METHOD, OPTIONS, Procs, _serve  # the echo of bench/floor.py
        procs = Procs()
        try:
            port = free_port()
            raw = w.next_request().SerializeToString()
            procs.start(_serve, f"127.0.0.1:{port}", b"x" * 104, None)
            import grpc
            ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)
            echo = ch.unary_unary(METHOD)
            one_hop = time_calls("echo", lambda: echo(raw, timeout=10), args.calls).p50
            ch.close()
        finally:
            procs.stop()

        tree = process_tree(address.pid)
        gw = next(p for p, c in tree.items() if " gateway " in f" {c} ")
        wk = [p for p, c in tree.items() if " worker " in f" {c} "]
        rtorch.connect(address)
        spies = {name: (spy(pid, args.spy_seconds, f"{tmp}/{name}.txt"), f"{tmp}/{name}.txt")
                 for name, pid in (("gateway", gw), *((f"worker{i}", p)
                                                       for i, p in enumerate(wk)))}
        prof = cProfile.Profile()
        prof.enable()
        end = time.monotonic() + args.spy_seconds + 1
        if args.spy_workload == "mlp":
            from remotegrad.loadtest.workloads import MlpWorkload
            mlp = MlpWorkload(hidden=256, seed=4)
            while time.monotonic() < end:
                r = mlp.next_request()
                client.compute(r)
                mlp.sent_ok(r)
        else:
            while time.monotonic() < end:
                sdk_seed(rtorch)
        prof.disable()
        for proc, _ in spies.values():
            if proc is not None:
                proc.wait(timeout=60)
        client.close()

    total = miss.p50
    print(f"\nseed call through the cluster (stub, fresh x): p50 {total:.3f} ms, "
          f"p99 {miss.p99:.3f} ms; one-hop gRPC echo of its payload p50 {one_hop:.3f} ms")
    print(f"\n{'stage (each timed alone, p50)':<68} {'ms':>7} {'share':>6}")
    parts.append(("gRPC transport: two hops (2 x one-hop echo)", 2 * one_hop))
    explained = sum(ms for _, ms in parts)
    for name, ms in sorted(parts, key=lambda p: -p[1]):
        print(f"{name:<68} {ms:>7.3f} {ms / total:>6.1%}")
    print(f"{'sum of the stages':<68} {explained:>7.3f} {explained / total:>6.1%}")
    print(f"{'rest: thread-pool hand-offs, GIL, channel/pool locks, scheduling':<68} "
          f"{total - explained:>7.3f} {(total - explained) / total:>6.1%}")

    for name, (proc, path) in spies.items():
        if proc is None or not os.path.exists(path):
            print(f"\npy-spy: no profile for {name}")
            continue
        print(f"\npy-spy {name} ({args.spy_workload} calls): top self time (share of "
              "samples holding the GIL)")
        for fn, share in top_self(path):
            print(f"  {share:6.1%}  {fn}")
        print(f"py-spy {name}: remotegrad's functions by inclusive share")
        for fn, share in top_inclusive(path):
            print(f"  {share:6.1%}  {fn}")

    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
    lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
    print(f"\ncProfile of the client ({args.spy_workload} calls), top by own time")
    print("\n".join(ln.replace(os.path.dirname(os.path.dirname(np.__file__)), "")
                    for ln in lines[-14:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
