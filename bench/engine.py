"""Engine benchmark: remotegrad's engine against PyTorch CPU eager, same process, same
thread count. Not a test: it prints figures and ratios and asserts nothing.

    .venv/bin/python bench/engine.py [--threads N] [--repeat R]

Workloads: the seed tutorial's gradient graph; a chain of 100 elementwise ops on a small
tensor (per-op overhead); an MLP training step (784-256-256-10, tanh, cross-entropy,
float32) at batch 64 and 256: loss and all six parameter gradients. The engine runs the
way a worker does: `engine.execute(wire nodes, targets, leaf lookup, numpy)`, so each call
pays for the structure key and the cached-program lookup, never for compiling (that
happens once, in the warm-up). Peak memory: tracemalloc for the engine (numpy registers
its allocations with it), the profiler's allocation events for PyTorch; both count only
what one step allocates (parameters and inputs exist beforehand). tracemalloc also counts
the Python objects a step makes (array headers, the run's lists), which the profiler does
not count for PyTorch; the "arrays" column leaves them out (numpy's tracemalloc domain,
sampled after every step).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def _threads() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeat", type=int, default=200)
    args, _ = p.parse_known_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy and torch load their BLAS
    return args


ARGS = _threads()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402, N812
import tracemalloc  # noqa: E402

from remotegrad.proto.codec import WireNode, array_hash  # noqa: E402
from remotegrad.worker import engine  # noqa: E402

torch.set_num_threads(ARGS.threads)


class Wire:
    """Builds a wire graph as the SDK would: nodes with ids, leaves by content hash."""

    def __init__(self) -> None:
        self.nodes: list[WireNode] = []
        self.data: dict[str, np.ndarray] = {}

    def add(self, op, *inputs, **attrs) -> int:
        self.nodes.append(WireNode(len(self.nodes) + 1000, op, tuple(inputs), attrs))
        return self.nodes[-1].id

    def leaf(self, arr: np.ndarray) -> int:
        h = array_hash(arr)
        self.data[h] = arr
        return self.add("leaf", hash=h, dtype=arr.dtype.name, shape=tuple(arr.shape))

    def const(self, v) -> int:
        return self.add("const", value=v)

    def grads(self, out: int, wrts: list[int]) -> list[int]:
        one = self.add("full", shape=(), value=1.0, dtype="float32")
        return [self.add("grad", out, one, w, n=1) for w in wrts]

    def runner(self, targets):
        nodes, data, t = self.nodes, self.data, targets
        run = lambda: engine.execute(nodes, t, data.__getitem__, np)  # noqa: E731
        run.program = lambda: engine._program(nodes, t, np)[0]
        return run


def timeit_pair(a, b, repeat: int) -> tuple[float, float]:
    """Median seconds per call of each, after a warm-up, calls interleaved (a, b, a, b...)
    so that both see the same machine load."""
    for _ in range(5):
        a(), b()
    sa, sb = [], []
    for _ in range(repeat):
        for fn, samples in ((a, sa), (b, sb)):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    return float(np.median(sa)), float(np.median(sb))


def engine_peak(fn) -> int:
    fn()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def engine_array_peak(fn) -> int:
    """Bytes of numpy array data alive after each step of the engine's program (numpy's
    own tracemalloc domain, so Python objects are left out, as the PyTorch profiler leaves
    out torch's): the figure comparable with PyTorch's allocator count."""
    fn()
    prog = fn.program()
    domain = np.lib.tracemalloc_domain
    sizes: list[int] = []

    def watch(step_fn):
        def run(*args):
            out = step_fn(*args)
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.DomainFilter(True, domain)])
            sizes.append(sum(t.size for t in snap.traces))
            return out
        return run

    saved, fast = prog.steps, prog._fast
    prog.steps = [(watch(f), ins, out, dies) for f, ins, out, dies in saved]
    prog._fast = None  # the step loop, so each step can be watched
    tracemalloc.start()
    base = sum(t.size for t in tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.DomainFilter(True, domain)]).traces)
    try:
        fn()
    finally:
        tracemalloc.stop()
        prog.steps, prog._fast = saved, fast
    return max(sizes, default=base) - base


def torch_peak(fn) -> int:
    from torch.profiler import ProfilerActivity, profile
    fn()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    del out
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        events = json.load(open(f.name))["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return max(totals, default=0)


# --- workloads ---------------------------------------------------------------------------
def seed_graph():
    x = np.ones((3, 3), np.float32)
    w = Wire()
    xi = w.leaf(x)
    y = w.add("mul", xi, w.const(2))
    z = w.add("pow", y, w.const(3))
    out = w.add("sum", z)
    engine_fn = w.runner([out, *w.grads(out, [xi])])

    tx = torch.ones(3, 3, requires_grad=True)

    def torch_fn():
        o = ((tx * 2) ** 3).sum()
        (g,) = torch.autograd.grad(o, tx)
        return o, g
    return engine_fn, torch_fn


CHAIN_OPS = ["exp", "neg", "tanh", "sigmoid", "mul2", "add1", "sin", "abs", "sqrt", "cos"]


def chain(n=100, size=64):
    x = np.random.default_rng(0).uniform(0.1, 1.0, size).astype(np.float32)
    w = Wire()
    y = w.leaf(x)
    for i in range(n):
        op = CHAIN_OPS[i % len(CHAIN_OPS)]
        if op == "mul2":
            y = w.add("mul", y, w.const(0.5))
        elif op == "add1":
            y = w.add("add", y, w.const(1.0))
        else:
            y = w.add(op, y)
    engine_fn = w.runner([y])
    tx = torch.from_numpy(x)
    table = {"mul2": lambda t: t * 0.5, "add1": lambda t: t + 1.0, "neg": torch.neg}

    def torch_fn():
        t = tx
        with torch.no_grad():
            for i in range(n):
                op = CHAIN_OPS[i % len(CHAIN_OPS)]
                t = table[op](t) if op in table else getattr(torch, op)(t)
        return t
    return engine_fn, torch_fn


def mlp(batch: int):
    rng = np.random.default_rng(0)
    sizes = [784, 256, 256, 10]
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)

    w = Wire()
    xi, yi = w.leaf(x), w.leaf(y)
    pids = [w.leaf(p) for p in params]
    h = xi
    for layer in range(3):
        h = w.add("linear", h, pids[2 * layer], pids[2 * layer + 1])
        if layer < 2:
            h = w.add("tanh", h)
    loss = w.add("cross_entropy", h, yi)
    engine_fn = w.runner([loss, *w.grads(loss, pids)])

    tp = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def torch_fn():
        for p in tp:
            p.grad = None
        t = tx
        for layer in range(3):
            t = F.linear(t, tp[2 * layer], tp[2 * layer + 1])
            if layer < 2:
                t = torch.tanh(t)
        out = F.cross_entropy(t, ty)
        out.backward()
        return out, [p.grad for p in tp]

    # Same numbers first: the benchmark compares equal work.
    ours = engine_fn()
    theirs = torch_fn()
    np.testing.assert_allclose(ours[0], theirs[0].item(), rtol=1e-4)
    for a, b in zip(ours[1:], theirs[1]):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-5)
    return engine_fn, torch_fn


def main() -> None:
    print(f"threads={ARGS.threads} numpy={np.__version__} torch={torch.__version__} "
          f"python={sys.version.split()[0]} cpus={os.cpu_count()}")
    rows = []
    for name, (eng, tor), per in [("seed graph (fwd+grad)", seed_graph(), 1),
                                  ("100-op chain, 64 floats", chain(), 100),
                                  ("MLP step, batch 64", mlp(64), 1),
                                  ("MLP step, batch 256", mlp(256), 1)]:
        te, tt = timeit_pair(eng, tor, ARGS.repeat)
        pe, pa, pt = engine_peak(eng), engine_array_peak(eng), torch_peak(tor)
        rows.append((name, te / per * 1e6, tt / per * 1e6, te / tt, pe, pa, pt))
    print(f"{'workload':24} {'engine us':>10} {'torch us':>10} {'ratio':>6}  "
          f"{'engine peak: all':>16} {'arrays':>9} {'torch peak':>11}")
    for name, te, tt, r, pe, pa, pt in rows:
        unit = "/op" if "chain" in name else ""
        print(f"{name:24} {te:>8.1f}{unit:2} {tt:>8.1f}{unit:2} {r:>6.2f}  "
              f"{pe / 1024:>12.1f} KiB {pa / 1024:>5.1f} KiB {pt / 1024:>7.1f} KiB")


if __name__ == "__main__":
    main()
