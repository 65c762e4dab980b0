"""Many gateways (issue 17): seed calls/s and latency with 1, 2 and 3 gateway processes on
this machine, sharing one Redis and the same workers, the SDK's clients balancing per call
(round_robin) over the gateways' addresses as over a Kubernetes headless Service; the
ratio against one gateway, and PyTorch RPC's single-client seed calls/s measured right
before and after every level (issue 13: 16 SDK clients against PT-RPC's one).

Every process is a real one started through the product's entry point
(`python -m remotegrad.server.cli gateway|worker`) on loopback; the client processes are
started once and reused by every level, so a level's figure holds no import time. Each
level runs --rounds times, the levels interleaved (1, 2, 3, 1, 2, 3, ...), so every level
sees the same load of a shared machine; the figure of a level is its best round and all
rounds are printed. Calls per gateway (each gateway's own metrics) show the spread; CPU ms
per call (from /proc) show what each role spends.

    .venv/bin/python bench/gateways.py [--clients 16] [--workers 2] [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
from _common import cpu_seconds, environment, free_port

CALLS = "remotegrad_calls_total"


# --- the SDK client processes ---------------------------------------------------------


def _client(conn, seed: int) -> None:
    """Answer (target, start_at, seconds) with this client's seed-call latencies (s), as a
    user's program would call: `import remotegrad as torch`, connect, compute, read."""
    import remotegrad as rtorch
    rtorch.manual_seed(seed)

    def call():
        x = rtorch.randn(3, 3, requires_grad=True)
        ((x * 2) ** 3).sum().backward()
        return x.grad.numpy()
    while (msg := conn.recv()) is not None:
        target, start_at, seconds = msg
        try:
            rtorch.connect(target)
            for _ in range(5):  # open the channel to every gateway of the target
                call()
            while time.time() < start_at:
                time.sleep(0.001)
            lat, end = [], start_at + seconds
            while time.time() < end:
                t = time.perf_counter()
                call()
                lat.append(time.perf_counter() - t)
            conn.send((lat, None))
        except Exception as e:  # noqa: BLE001  (report it instead of leaving the parent waiting)
            conn.send(([], repr(e)))


class Clients:
    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for i in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_client, args=(child, 1000 + i), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def run(self, target: str, seconds: float) -> tuple[float, float, float, list[str]]:
        """Every client calls in a closed loop for `seconds`: calls/s, p50, p99 (ms)."""
        start_at = time.time() + 2.0 + 0.1 * len(self.conns)
        for c in self.conns:
            c.send((target, start_at, seconds))
        results = []
        for c in self.conns:
            if not c.poll(seconds + 180):
                raise TimeoutError("an SDK client did not answer")
            results.append(c.recv())
        lat = np.array([x for ls, _ in results for x in ls] or [0.0]) * 1e3
        errors = [e for _, e in results if e]
        return (sum(len(ls) for ls, _ in results) / seconds, float(np.percentile(lat, 50)),
                float(np.percentile(lat, 99)), errors)

    def cpu(self) -> dict[str, float]:
        return {f"client{i}": cpu_seconds(p.pid) for i, p in enumerate(self.procs)}

    def close(self) -> None:
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


# --- the cluster ----------------------------------------------------------------------


class Cluster:
    """One redis-server, `workers` workers and `gateways` gateways, each a process."""

    def __init__(self, gateways: int, workers: int, gateway_args: list[str]) -> None:
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ, REMOTEGRAD_WORKER_SECRET=secrets.token_hex(16),
                        PYTHONUNBUFFERED="1")
        port = free_port()
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self._spawn("redis", [shutil.which("redis-server") or "redis-server", "--port",
                              str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                              "no", "--maxmemory", "1gb", "--maxmemory-policy",
                              "volatile-lru"])
        self._wait(lambda: self._redis_ping(), "redis-server")
        cli = [sys.executable, "-m", "remotegrad.server.cli"]
        common = ["--redis-url", self.redis_url, "--heartbeat", "0.5", "--log-level",
                  "WARNING"]
        for i in range(workers):
            self._spawn(f"worker{i}", [*cli, "worker", "--port", "0", *common])
        self.addresses, self.metrics_ports = [], []
        for i in range(gateways):
            port, mport = free_port(), free_port()
            self._spawn(f"gateway{i}", [*cli, "gateway", "--host", "127.0.0.1", "--port",
                                        str(port), "--metrics-port", str(mport), *common,
                                        *gateway_args])
            self.addresses.append(f"127.0.0.1:{port}")
            self.metrics_ports.append(mport)
        for i, a in enumerate(self.addresses):
            self._wait(lambda a=a: self._workers_seen(a) == workers, f"gateway{i}'s workers")

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.procs[name] = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL)

    def _wait(self, check, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead} exited while waiting for {what}")
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001  (not up yet)
                pass
            time.sleep(0.2)
        raise TimeoutError(what)

    def _redis_ping(self) -> bool:
        import redis
        return redis.Redis.from_url(self.redis_url, socket_timeout=1).ping()

    @staticmethod
    def _workers_seen(address: str) -> int:
        import grpc

        from remotegrad.proto import remotegrad_pb2 as pb
        from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
        with grpc.insecure_channel(address) as ch:
            resp = pb_grpc.GatewayStub(ch).ClusterStatus(pb.ClusterStatusRequest(), timeout=5)
        return len(resp.workers)

    def computes(self, i: int) -> float:
        from prometheus_client.parser import text_string_to_metric_families
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[i]}/metrics",
                                      timeout=5).read().decode()
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == CALLS and s.labels.get("method") == "Compute"
                   and s.labels.get("code") == "OK")

    def cpu(self) -> dict[str, float]:
        return {n: cpu_seconds(p.pid) for n, p in self.procs.items()}

    def redis_commands(self) -> int:
        import redis
        return int(redis.Redis.from_url(self.redis_url).info("stats")
                   ["total_commands_processed"])

    def close(self) -> None:
        for name in sorted(self.procs, key=lambda n: n == "redis"):  # Redis last
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def role(name: str) -> str:
    return name.rstrip("0123456789")


def measure(cluster: Cluster, clients: Clients, k: int, seconds: float) -> dict:
    target = "ipv4:" + ",".join(cluster.addresses[:k])
    before_calls = [cluster.computes(i) for i in range(k)]
    before_cpu = {**cluster.cpu(), **clients.cpu()}
    before_cmds = cluster.redis_commands()
    cps, p50, p99, errors = clients.run(target, seconds)
    commands = cluster.redis_commands() - before_cmds - 1  # less this INFO
    after_cpu = {**cluster.cpu(), **clients.cpu()}
    spread = [cluster.computes(i) - b for i, b in enumerate(before_calls)]
    used: dict[str, float] = {}
    for n in before_cpu:
        used[role(n)] = used.get(role(n), 0.0) + after_cpu[n] - before_cpu[n]
    # the CPU window includes the clients' 5 warm-up calls and the wait: an upper bound
    calls = sum(spread) or 1
    return {"cps": cps, "p50": p50, "p99": p99, "errors": errors, "spread": spread,
            "redis_per_call": commands / calls,
            "cpu": {r: v / calls * 1e3 for r, v in used.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--gateways", default="1,2,3", help="levels, comma-separated")
    ap.add_argument("--seconds", type=float, default=5.0, help="per level and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--gateway-arg", action="append", default=[],
                    help="extra gateway argument, e.g. --gateway-arg=--local-max-nodes=0")
    ap.add_argument("--no-peer", action="store_true", help="skip PT-RPC")
    args = ap.parse_args()
    levels = [int(x) for x in args.gateways.split(",")]
    print(environment())
    pt = None
    if not args.no_peer:
        from _ptrpc import PtRpc
        pt = PtRpc()
        pt.time("seed rpc_sync(autograd.grad)", 100)  # warm
    cluster = Cluster(max(levels), args.workers, args.gateway_arg)
    clients = Clients(args.clients)
    rows: dict[int, list[dict]] = {k: [] for k in levels}
    try:
        # discarded: every client process imported and connected before the first level
        clients.run("ipv4:" + ",".join(cluster.addresses), 1.0)
        for r in range(args.rounds):
            for k in levels:
                ptc = None
                if pt:
                    before = pt.time("seed rpc_sync(autograd.grad)", 300)
                res = measure(cluster, clients, k, args.seconds)
                if pt:
                    after = pt.time("seed rpc_sync(autograd.grad)", 300)
                    ptc = 600 / (sum(before) + sum(after))
                res["pt"] = ptc
                rows[k].append(res)
                c = res["cpu"]
                print(f"round {r + 1}, {k} gateway(s): {res['cps']:.1f} calls/s, p50 "
                      f"{res['p50']:.2f} ms, p99 {res['p99']:.2f} ms; calls per gateway "
                      f"{[int(s) for s in res['spread']]}; CPU ms/call gateways "
                      f"{c.get('gateway', 0):.3f} workers {c.get('worker', 0):.3f} redis "
                      f"{c.get('redis', 0):.3f} clients {c.get('client', 0):.3f}; Redis commands/"
                      f"call {res['redis_per_call']:.2f}"
                      + (f"; PT-RPC 1 client {ptc:.1f} calls/s" if ptc else "")
                      + (f"; ERRORS {res['errors'][:2]}" if res["errors"] else ""),
                      flush=True)
    finally:
        clients.close()
        cluster.close()
        if pt:
            pt.close()
    extra = " ".join(args.gateway_arg) or "defaults"
    print(f"\nseed call (SDK: randn 3x3, ((x*2)**3).sum().backward(), read x.grad), "
          f"{args.clients} SDK client processes, round_robin over the gateways' addresses, "
          f"{args.workers} workers, one redis-server, gateway settings: {extra}; "
          f"best of {args.rounds} rounds of {args.seconds:g}s, levels interleaved")
    print(f"{'gateways':>8} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs 1 gw':>8} "
          f"{'PT-RPC 1 cl':>11} {'vs PT-RPC':>9}   (PT-RPC: its best 600-call figure "
          "around the level's rounds)")
    best = {k: max(v, key=lambda r: r["cps"]) for k, v in rows.items()}
    base = best[levels[0]]["cps"]
    for k in levels:
        b = best[k]
        # the peer's best figure around this level's rounds: the ratio errs on its side
        ptc = max((r["pt"] for r in rows[k] if r["pt"]), default=float("nan"))
        print(f"{k:>8} {b['cps']:>9.1f} {b['p50']:>8.2f} {b['p99']:>8.2f} "
              f"{b['cps'] / base:>7.2f}x {ptc:>11.1f} {b['cps'] / ptc:>8.2f}x")
    failed = sum(len(r["errors"]) for v in rows.values() for r in v)
    print(f"client errors: {failed}; target (issue 13): {args.clients} SDK clients >= 2.0x "
          "PT-RPC's single client")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
