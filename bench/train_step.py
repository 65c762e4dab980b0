"""A training step through a cluster against PyTorch RPC with the model resident on its
worker, each written as its user would write it, interleaved in rounds (same load).

- remotegrad: `remotegrad cluster up --workers 2`; the SDK in this process runs
  nn.Sequential(784-256-256-10, tanh), cross_entropy, backward, the optimiser's step and
  `loss.item()` every step, a fresh batch each step.
- PT-RPC: the same model and optimiser live on the worker (bench/_ptrpc.py, resident
  form); the client sends X and Y with rpc_sync and gets the loss back.
- the seed call (`((x * 2) ** 3).sum().backward()`, read x.grad) against PT-RPC's
  rpc_sync of a function computing the gradient on the worker.

Also counts the bytes remotegrad moves per step (request + response payloads, uploads and
downloads) against the floor, X + Y + the loss, and the CPU each side spends per step in
all its processes (remotegrad: this SDK process, the gateway, the workers and Redis;
PT-RPC: its client and worker): on a loaded machine wall times move with the load, CPU
time much less, and it is what a step costs the machine.

    .venv/bin/python bench/train_step.py [--rounds 5] [--steps 40] [--workers 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import cpu_seconds, environment, local_cluster  # noqa: E402
from remotegrad.loadtest._cluster import process_tree  # noqa: E402
from _ptrpc import PtRpc  # noqa: E402

import remotegrad as rg  # noqa: E402
from remotegrad import _session  # noqa: E402


class Wire:
    """Payload bytes a remote session sends and receives (protobuf sizes), counted only
    while `on`: ByteSize() encodes the message to size it (~0.1 ms for a 200 KiB batch),
    which would be SDK CPU in the timed steps, so bytes are counted in steps of their own."""

    def __init__(self, session) -> None:
        self.bytes, self.on = 0, False
        for name in ("compute", "upload", "fetch"):
            real = getattr(session, name)
            setattr(session, name, self._counting(real))

    def _counting(self, real):
        def call(arg):
            out = real(arg)
            if not self.on:
                return out
            sent = arg.ByteSize() if hasattr(arg, "ByteSize") else sum(m.ByteSize() for m in arg)
            self.bytes += sent + (out.ByteSize() if hasattr(out, "ByteSize") else 0)
            return out
        return call


def trainer(optimizer: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    model = rg.nn.Sequential(rg.nn.Linear(784, 256), rg.nn.Tanh(), rg.nn.Linear(256, 256),
                             rg.nn.Tanh(), rg.nn.Linear(256, 10))
    opt = (rg.optim.SGD(model.parameters(), lr=0.05) if optimizer == "sgd"
           else rg.optim.Adam(model.parameters(), lr=1e-3))

    def step() -> float:
        x = rg.from_numpy(rng.standard_normal((64, 784)).astype(np.float32))
        y = rg.from_numpy(rng.integers(0, 10, 64))
        opt.zero_grad()
        loss = rg.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def seed_call(rng=np.random.default_rng(1)):
    x = rg.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    ((x * 2) ** 3).sum().backward()
    return x.grad.numpy()


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


class Cpu:
    """CPU seconds of a set of processes, summed per named block of calls, and per role
    (`pids()` maps each pid to its role: gateway, worker, redis, ...; the SDK is this
    process)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.roles: dict[str, dict[str, float]] = {}

    def measure(self, name: str, pids, fn, n: int, own: bool = False):
        before = self._now(pids(), own)
        out = fn()
        after = self._now(pids(), own)
        by_role = self.roles.setdefault(name, {})
        for role, t in after.items():
            by_role[role] = by_role.get(role, 0.0) + t - before.get(role, 0.0)
        self.seconds[name] = self.seconds.get(name, 0.0) + sum(after.values()) - sum(
            before.values())
        self.calls[name] = self.calls.get(name, 0) + n
        return out

    @staticmethod
    def _now(pids: dict[int, str], own: bool) -> dict[str, float]:
        t: dict[str, float] = {}
        for p, role in pids.items():
            t[role] = t.get(role, 0.0) + cpu_seconds(p)
        if own:
            times = os.times()
            t["sdk"] = times.user + times.system
        return t

    def ms(self, name: str) -> float:
        return self.seconds[name] / self.calls[name] * 1e3

    def role_ms(self, name: str) -> str:
        return ", ".join(f"{role} {t / self.calls[name] * 1e3:.2f}"
                         for role, t in sorted(self.roles[name].items()))


def _role(cmdline: str) -> str:
    """A cluster process's role, from its command line."""
    for role in ("gateway", "worker", "redis-server", "cluster"):
        if role in cmdline:
            return role
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(environment())
    peer = PtRpc(hidden=256)
    times: dict[str, list[float]] = {}
    cpu = Cpu()
    peer_pids = lambda: {p.pid: "pt-rpc" for p in peer.procs}  # noqa: E731
    try:
        with local_cluster(args.workers) as cluster:
            tree = lambda: {**{p: _role(c) for p, c in process_tree(cluster.pid).items()},  # noqa: E731
                            cluster.pid: "cluster"}
            rg.connect(cluster)
            wire = Wire(_session.current())
            steps = {"sgd": trainer("sgd"), "adam": trainer("adam")}
            for fn in steps.values():  # warm-up: compile, upload the parameters
                timed(fn, 3)
            seed_call()
            for r in range(args.rounds):
                for opt, fn in steps.items():
                    times.setdefault(f"pt-rpc resident {opt}", []).extend(cpu.measure(
                        f"pt-rpc {opt}", peer_pids, lambda o=opt: peer.time(
                            f"train step resident {o}", args.steps), args.steps))
                    times.setdefault(f"remotegrad {opt}", []).extend(cpu.measure(
                        f"remotegrad {opt}", tree, lambda f=fn: timed(f, args.steps),
                        args.steps, own=True))
                    before, wire.on = wire.bytes, True
                    timed(fn, 3)  # bytes counted apart from the timed steps
                    wire.on = False
                    times.setdefault(f"bytes {opt}", []).append((wire.bytes - before) / 3)
                times.setdefault("pt-rpc seed", []).extend(
                    peer.time("seed rpc_sync(autograd.grad)", args.calls))
                times.setdefault("remotegrad seed", []).extend(timed(seed_call, args.calls))
                print(f"round {r + 1}/{args.rounds}, load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        peer.close()
    floor = 64 * 784 * 4 + 64 * 8 + 4  # X (float32), Y (int64), the loss
    print(f"\n{'workload (p50 ms)':<28} {'PT-RPC':>9} {'remotegrad':>11} {'ratio':>7}  target")
    for name, peer_name in (("training step, SGD", "sgd"), ("training step, Adam", "adam"),
                            ("seed call", "seed")):
        p = statistics.median(times[f"pt-rpc resident {peer_name}"] if peer_name != "seed"
                              else times["pt-rpc seed"]) * 1e3
        m = statistics.median(times[f"remotegrad {peer_name}"]) * 1e3
        print(f"{name:<28} {p:>9.3f} {m:>11.3f} {m / p:>7.2f}  <= 1.0")
    for opt in ("sgd", "adam"):
        p, m = cpu.ms(f"pt-rpc {opt}"), cpu.ms(f"remotegrad {opt}")
        print(f"{'CPU per step, ' + opt.upper():<28} {p:>9.3f} {m:>11.3f} {m / p:>7.2f}  "
              "(all processes, ms)")
        print(f"  remotegrad {opt.upper()} CPU ms per step by process: "
              f"{cpu.role_ms(f'remotegrad {opt}')}")
    for opt in ("sgd", "adam"):
        b = statistics.median(times[f"bytes {opt}"])
        print(f"bytes per {opt} step: {b:,.0f} (floor X + Y + loss {floor:,}: "
              f"{b / floor:.2f}x, target <= 1.10x)")


if __name__ == "__main__":
    main()
