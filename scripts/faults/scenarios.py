"""The fault scenarios of RELIABILITY.md, each a function that builds its own cluster,
applies one fault under a steady load from several client processes, and returns its
figures. `python scripts/faults/run.py NAME` prints them; tests/reliability asserts them.
"""

from __future__ import annotations

import os
import signal
import time

import grpc
import numpy as np

from harness import (Load, metric, print_figures, rss_bytes, start_cluster, start_redis,
                     stop, summary, wait_until)
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode


def worker_kill(clients: int = 3, workers: int = 3, before: float = 2.0,
                after: float = 4.0) -> dict:
    """SIGKILL one worker mid-call; its calls must finish on the others."""
    c = start_cluster(workers)
    try:
        with Load(c.address, clients=clients) as load:
            time.sleep(before)
            retries0 = c.metric("remotegrad_retries_total")
            victim = c.workers[0]
            killed_at = time.time()
            os.kill(victim.pid, signal.SIGKILL)
            time.sleep(after)
        figures = summary(load.calls(), around=killed_at)
        figures["retried_on_another_worker"] = int(c.metric("remotegrad_retries_total")
                                                   - retries0)
        figures["deadline_s"] = load.args[4]
        return figures
    finally:
        c.close()


def _cache_hit_twice(address: str) -> bool:
    """The same computation twice: is the second answer a cache hit?"""
    x = np.arange(12, dtype=np.float32).reshape(3, 4) + np.float32(time.time() % 1000)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (3, 4)}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    req = codec.encode_request(nodes, [codec.encode_array(x, h)], [1])
    with grpc.insecure_channel(address) as ch:
        stub = pb_grpc.GatewayStub(ch)
        stub.Compute(req, timeout=10)
        return stub.Compute(req, timeout=10).cache_hit


def redis_restart(clients: int = 3, before: float = 2.0, down: float = 2.0,
                  after: float = 3.0) -> dict:
    """SIGKILL redis-server under load, start it again (empty) on the same port."""
    c = start_cluster(2)
    try:
        with Load(c.address, clients=clients) as load:
            time.sleep(before)
            killed_at = time.time()
            os.kill(c.redis.pid, signal.SIGKILL)
            c.redis.popen.wait()
            time.sleep(down)
            c.redis = start_redis(c.redis.port)
            back_at = time.time()
            time.sleep(after)
        figures = summary(load.calls(), around=killed_at, after=down + after)
        hits0 = c.metric("remotegrad_cache_total", result="hit")
        resumed = wait_until(lambda: _cache_hit_twice(c.address), "caching back", timeout=15)
        figures["cache_hit_again"] = True
        figures["cache_checked_s_after_restart"] = round(time.time() - back_at, 2)
        figures["cache_check_took_s"] = round(resumed, 2)
        figures["cache_hits_after"] = int(c.metric("remotegrad_cache_total", result="hit")
                                          - hits0)
        figures["redis_errors_counted"] = int(c.metric("remotegrad_redis_errors_total"))
        return figures
    finally:
        c.close()


def gateway_restart(clients: int = 3, before: float = 2.0, after: float = 4.0,
                    sig: int = signal.SIGKILL) -> dict:
    """Kill the gateway under load and start it again on the same port; the SDK's retry
    carries the calls through."""
    c = start_cluster(2)
    try:
        with Load(c.address, clients=clients) as load:
            time.sleep(before)
            killed_at = time.time()
            stop(c.gateway.popen, sig)
            c.start_gateway(c.gateway.port)
            took = wait_until(lambda: len(c.status().workers) == 2, "gateway back",
                              procs=[c.gateway.popen])
            down_s = time.time() - killed_at
            time.sleep(after)
        figures = summary(load.calls(), around=killed_at, after=after + took)
        figures["gateway_down_s"] = round(down_s, 2)
        figures["deadline_s"] = load.args[4]
        return figures
    finally:
        c.close()


def heavy_request(n: int = 768, steps: int = 400):
    """A graph that takes a worker many seconds: h = tanh(h @ w), `steps` times."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, n))
    w = rng.standard_normal((n, n)) / np.sqrt(n)
    hx, hw = codec.array_hash(x), codec.array_hash(w)
    nodes = [WireNode(0, "leaf", (), {"hash": hx, "dtype": "float64", "shape": (n, n)}),
             WireNode(1, "leaf", (), {"hash": hw, "dtype": "float64", "shape": (n, n)})]
    h = 0
    for _ in range(steps):
        nodes.append(WireNode(len(nodes), "matmul", (h, 1), {}))
        nodes.append(WireNode(len(nodes), "tanh", (len(nodes) - 1,), {}))
        h = len(nodes) - 1
    nodes.append(WireNode(len(nodes), "sum", (h,), {"dim": None, "keepdim": False}))
    return codec.encode_request(nodes, [codec.encode_array(x, hx), codec.encode_array(w, hw)],
                                [len(nodes) - 1])


def slow_worker(deadline: float = 1.0, stuck: bool = False, repeats: int = 4) -> dict:
    """A call longer than its deadline (a slow graph, or a worker frozen with SIGSTOP when
    `stuck`): DEADLINE_EXCEEDED at the deadline, the worker told to stop, nothing left
    allocated (the same call again leaves the worker's memory where it was)."""
    c = start_cluster(1)
    try:
        w = c.workers[0]
        req = heavy_request()
        figures: dict = {"deadline_s": deadline, "status": [], "answered_after_s": [],
                         "worker_rss_mib": [
                             round(rss_bytes(w.pid) / 2**20, 1)]}
        for _ in range(repeats):
            with c.channel() as ch:
                stub = pb_grpc.GatewayStub(ch)
                if stuck:
                    os.kill(w.pid, signal.SIGSTOP)
                start = time.monotonic()
                code = "OK"
                try:
                    stub.Compute(req, timeout=deadline)
                except grpc.RpcError as e:
                    code = e.code().name
                figures["status"].append(code)
                figures["answered_after_s"].append(round(time.monotonic() - start, 3))
                if stuck:
                    os.kill(w.pid, signal.SIGCONT)
            if stuck:  # the thawed worker must not go on to compute the abandoned call
                time.sleep(2.0)
                done = metric(w.metrics_port, "remotegrad_calls_total", code="OK")
                running = metric(w.metrics_port, "remotegrad_running_calls")
                figures.setdefault("worker_completed_abandoned_calls", 0)
                figures["worker_completed_abandoned_calls"] += int(done)
                figures.setdefault("worker_idle_2s_after_thaw", []).append(running == 0)
            else:  # the worker counts the call cancelled, and nothing runs
                n = len(figures["status"])
                figures.setdefault("worker_stopped_s_after_answer", []).append(round(wait_until(
                    lambda n=n: metric(w.metrics_port, "remotegrad_cancelled_total") >= n
                    and metric(w.metrics_port, "remotegrad_running_calls") == 0,
                    "worker stopped the call", timeout=30), 3))
            time.sleep(0.3)
            figures["worker_rss_mib"].append(round(rss_bytes(w.pid) / 2**20, 1))
        figures["worker_cancelled_calls"] = int(metric(w.metrics_port,
                                                       "remotegrad_cancelled_total"))
        figures["gateway_inflight_after"] = int(c.metric("remotegrad_worker_inflight"))
        figures["worker_serves_after"] = _cache_hit_twice(c.address)
        return figures
    finally:
        c.close()


def no_workers(clients: int = 2) -> dict:
    """Every worker gone (SIGKILL): calls fail fast saying so; a new worker is used as
    soon as it registers."""
    import remotegrad as torch
    c = start_cluster(2)
    try:
        for w in c.workers:
            os.kill(w.pid, signal.SIGKILL)
        session = torch.connect(c.address, timeout=15)
        fails = []
        for i in range(5):
            start = time.monotonic()
            try:
                float((torch.tensor([1.0, 2.0 + i]) * 3).sum())
                fails.append(("OK", time.monotonic() - start, ""))
            except Exception as e:  # noqa: BLE001
                fails.append((type(e).__name__, time.monotonic() - start, str(e)))
        new = c.add_worker()
        started = time.monotonic()
        value = None
        while time.monotonic() - started < 30:  # keep calling until one succeeds
            try:
                value = float((torch.tensor([5.0, 6.0]) * 2).sum())
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.05)
        served_after = time.monotonic() - started
        registered = wait_until(lambda: len(c.status().workers) == 1, "worker", timeout=5)
        session.close()
        torch.connect("local")
        return {"calls_without_workers": len(fails),
                "failed_as": sorted({f[0] for f in fails}),
                "worst_failure_s": round(max(f[1] for f in fails), 3),
                "message": fails[0][2][:160],
                "first_success_s_after_worker_start": round(served_after, 2),
                "value": value, "new_worker_alive": new.popen.poll() is None,
                "registered_check_s": round(registered, 2)}
    finally:
        c.close()


def soak(seconds: float = 20.0, clients: int = 3, rate: float = 20.0,
         sample_every: float = 1.0, warmup: float = 5.0, cache_mib: int = 64,
         redis_maxmemory: str = "256mb") -> dict:
    """A fixed rate for `seconds`, sampling the resident memory of every process. Every
    call stores a fresh leaf, so the caches fill: their configured sizes (`cache_mib` per
    process, Redis's maxmemory) are the bound the memory must stay under."""
    cache = ["--memory-cache-bytes", str(cache_mib << 20)]
    c = start_cluster(2, gateway_args=cache, worker_args=cache,
                      redis_maxmemory=redis_maxmemory)
    try:
        with Load(c.address, clients=clients, rate=rate, max_seconds=seconds + 60) as load:
            procs = {p.name: p.pid for p in c.processes()}
            procs.update({f"client{i}": p.pid for i, p in enumerate(load.procs)})
            samples: dict[str, list[int]] = {n: [] for n in procs}
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                for n, pid in procs.items():
                    samples[n].append(rss_bytes(pid))
                time.sleep(sample_every)
        figures = summary(load.calls())
        skip = max(1, int(warmup / sample_every))
        mem = {}
        for n, xs in samples.items():
            xs = [x for x in xs if x]
            base = xs[min(skip, len(xs) - 1)]
            mem[n] = {"start_mib": round(base / 2**20, 1), "end_mib": round(xs[-1] / 2**20, 1),
                      "max_mib": round(max(xs) / 2**20, 1),
                      "growth_mib": round((max(xs[skip:] or xs) - base) / 2**20, 1)}
        figures["seconds"] = seconds
        figures["caches"] = {"memory_cache_mib": cache_mib, "redis_maxmemory": redis_maxmemory}
        figures["rate_per_s"] = round(figures["calls"] / seconds, 1)
        figures["rss"] = mem
        return figures
    finally:
        c.close()


SCENARIOS = {"worker-kill": worker_kill, "redis-restart": redis_restart,
             "gateway-restart": gateway_restart,
             "gateway-drain": lambda **kw: gateway_restart(sig=signal.SIGTERM, **kw),
             "slow-worker": slow_worker,
             "stuck-worker": lambda **kw: slow_worker(stuck=True, **kw), "no-workers": no_workers,
             "soak": soak}


def run(name: str, **kw) -> dict:
    figures = SCENARIOS[name](**kw)
    print_figures(name, figures)
    return figures
