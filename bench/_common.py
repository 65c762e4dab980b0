"""Shared by the benchmark scripts: timing, the machine and versions, a cluster, a client.

Each script prints its figures and the ratios between them, all measured in the same run;
nothing here asserts on a time. Every process a script starts is stopped by its pid.
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from remotegrad.loadtest._cluster import free_port, local_cluster  # noqa: E402

__all__ = ["Timing", "time_calls", "environment", "loadavg", "wait_quiet", "local_cluster",
           "free_port", "Client", "closed_loop_throughput", "print_table"]


@dataclass
class Timing:
    name: str
    samples: np.ndarray  # seconds

    @property
    def p50(self) -> float:
        return float(np.percentile(self.samples, 50)) * 1e3

    @property
    def p99(self) -> float:
        return float(np.percentile(self.samples, 99)) * 1e3

    @property
    def mean(self) -> float:
        return float(self.samples.mean()) * 1e3

    @property
    def calls_per_s(self) -> float:
        return len(self.samples) / float(self.samples.sum())

    def row(self) -> str:
        return (f"{self.name:<44} {self.p50:>9.3f} {self.p99:>9.3f} {self.calls_per_s:>9.1f}")


def time_calls(name: str, fn, n: int, warmup: int = 20, budget_s: float = 60.0) -> Timing:
    """Time `fn()` n times, one after another (single client), after a warm-up."""
    for _ in range(warmup):
        fn()
    out = []
    deadline = time.perf_counter() + budget_s
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        if t > deadline:
            break
    return Timing(name, np.array(out))


def print_table(title: str, timings: list[Timing]) -> None:
    print(f"\n{title}")
    print(f"{'call':<44} {'p50 ms':>9} {'p99 ms':>9} {'calls/s':>9}")
    print("-" * 74)
    for t in timings:
        print(t.row())


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except FileNotFoundError:
        return 0.0


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def wait_quiet(threshold: float = 1.0, max_wait: float | None = None) -> str:
    """Wait (bounded) until the 1-minute load average is under `threshold`: on a shared
    2-core machine other people's test runs would otherwise be in the figures.
    $REMOTEGRAD_BENCH_QUIET_WAIT sets the bound in seconds (default 120; 0: do not wait)."""
    if max_wait is None:
        max_wait = float(os.environ.get("REMOTEGRAD_BENCH_QUIET_WAIT", "120"))
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline and float(loadavg().split()[0]) >= threshold:
        time.sleep(2.0)
    return loadavg()


def environment() -> str:
    import grpc
    import torch
    try:
        redis_v = subprocess.run(["redis-server", "--version"], capture_output=True,
                                 text=True, timeout=5).stdout.split()[2]
    except Exception:  # noqa: BLE001
        redis_v = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except Exception:  # noqa: BLE001
        cpu = platform.processor()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except Exception:  # noqa: BLE001
        commit = "?"
    return (f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
            f"machine {os.cpu_count()} cores ({cpu}), {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, grpcio "
            f"{grpc.__version__}, numpy {np.__version__}, torch {torch.__version__}, "
            f"redis-server {redis_v}; remotegrad commit {commit}; load average at start "
            f"{wait_quiet()}")


class Client:
    """A gateway stub with unlimited message sizes."""

    def __init__(self, address: str) -> None:
        import grpc

        from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
        self.stub = pb_grpc.GatewayStub(self.channel)

    def compute(self, req, timeout: float = 60.0):
        return self.stub.Compute(req, timeout=timeout)

    def close(self) -> None:
        self.channel.close()


def _throughput_worker(address: str, workload: str, options: dict, seconds: float,
                       start_at: float, seed: int, q) -> None:
    import grpc

    from remotegrad.loadtest.workloads import make_workload
    n, lat, resent = 0, [], 0
    try:
        client = Client(address)
        w = make_workload(workload, seed=seed, **options)

        def call():
            nonlocal resent
            r = w.next_request()
            try:
                client.compute(r)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                w.mark_lost()  # evicted: send the leaves again, as the SDK does
                resent += 1
                r = w.next_request()
                client.compute(r)
            w.sent_ok(r)
        for _ in range(3):  # warm the channel (and upload reused leaves) first
            call()
        while time.time() < start_at:
            time.sleep(0.001)
        end = time.time() + seconds
        while time.time() < end:
            t = time.perf_counter()
            call()
            lat.append(time.perf_counter() - t)
            n += 1
        client.close()
        q.put((n, lat, resent, None))
    except Exception as e:  # noqa: BLE001  (report it instead of leaving the parent waiting)
        q.put((n, lat, resent, repr(e)))


def closed_loop_throughput(address: str, clients: int, seconds: float, workload: str = "seed",
                           **options) -> tuple[float, float, float]:
    """`clients` processes, each calling in a closed loop for `seconds`: total calls/s and
    the p50/p99 latency (ms) over all calls."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 3.0 + 0.3 * clients  # let every process import and warm up
    procs = [ctx.Process(target=_throughput_worker, args=(address, workload, options, seconds,
                                                         start_at, 1000 + i, q))
             for i in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    errors = [e for *_, e in results if e]
    if errors:
        print(f"{len(errors)} client process(es) failed: {errors[0]}", file=sys.stderr)
    resent = sum(r for _, _, r, _ in results)
    if resent:
        print(f"{resent} calls resent after eviction (FAILED_PRECONDITION)", file=sys.stderr)
    total = sum(n for n, *_ in results)
    lat = np.array([x for _, ls, *_ in results for x in ls] or [0.0]) * 1e3
    return total / seconds, float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
