"""Where a GPU step's time goes. Not a test; prints tables.

    python bench/gpu_overhead.py [--out FILE]

1. Host cost per launch, CuPy and PyTorch: a call's host time, queueing only (the device
   syncs once at the end). When a step's host time exceeds its device time the step is
   launch-bound, and its wall time is its host time.
2. The engine's MLP step (784-1024-1024-10, as bench/gpu.py) step by step, unfused: each
   step's host time and device time (CUDA events around it), summed by op.
3. PyTorch's same step: its kernels and their device time (torch.profiler).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.engine helpers

SIZES = (784, 1024, 1024, 10)


def host_us(fn, n=2000) -> float:
    """Mean host microseconds per call, queueing only."""
    import cupy
    import torch
    for _ in range(20):
        fn()
    cupy.cuda.get_current_stream().synchronize()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    host = (time.perf_counter() - t) / n * 1e6
    cupy.cuda.get_current_stream().synchronize()
    torch.cuda.synchronize()
    return host


def _tanh_affine(x):
    import cupy
    return cupy.tanh(x) * 2 + 1


def launch_rows() -> list[str]:
    import cupy
    import torch
    a = cupy.ones((1024,), cupy.float32)
    m = cupy.ones((64, 64), cupy.float32)
    ta = torch.ones(1024, device="cuda")
    tm = torch.ones(64, 64, device="cuda")
    fused = cupy.fuse(kernel_name="tanh_affine")(_tanh_affine)
    gemm = getattr(getattr(cupy, "cublas", None), "gemm", None)
    rows = [("cupy ufunc add", lambda: cupy.add(a, a)),
            ("cupy fused (3 ops)", lambda: fused(a)),
            ("cupy matmul 64x64", lambda: cupy.matmul(m, m)),
            ("cupy matmul 64x64 (transposed view)", lambda: cupy.matmul(m, m.T)),
            ("cupy dot 64x64", lambda: cupy.dot(m, m)),
            ("cupy ndarray.dot 64x64 (transposed view)", lambda: m.dot(m.T)),
            ("cupy.cublas.gemm N,T 64x64", (lambda: gemm("N", "T", m, m)) if gemm else None),
            ("cupy sum (all)", lambda: a.sum()),
            ("cupy sum axis 0 of 64x64", lambda: m.sum(axis=0)),
            ("cupy max axis 1 keepdims", lambda: cupy.max(m, axis=1, keepdims=True)),
            ("torch add", lambda: torch.add(ta, ta)),
            ("torch matmul 64x64", lambda: torch.matmul(tm, tm))]
    return [f"{name:<40} {host_us(fn):8.1f} us host" for name, fn in rows if fn]


def engine_mlp(batch):
    import cupy

    from remotegrad.worker.engine import compile_graph
    from tests.engine import helpers
    from tests.engine.graphs import mlp_graph
    helpers.XP = cupy
    eg, targets = mlp_graph(batch=batch, sizes=SIZES)
    eg.prog = compile_graph(eg.g, targets, cupy)
    eg.run()
    eg.run()
    return eg.prog, [eg.device[h] for h in eg.prog.leaf_hashes]


def step_rows(batch) -> list[str]:
    """Each step of the engine's MLP program, run one by one with events around it."""
    import cupy
    prog, leaves = engine_mlp(batch)
    fast_host = host_us(lambda: prog.run(leaves), n=100)
    stream = cupy.cuda.get_current_stream()
    t = time.perf_counter()
    for _ in range(30):
        prog.run(leaves)
    stream.synchronize()
    wall = (time.perf_counter() - t) / 30 * 1e6
    host, dev = defaultdict(float), defaultdict(float)
    reps = 20
    for _ in range(reps):
        vals = [None] * prog.nslots
        for n, v in prog.consts:
            vals[n] = v
        for n, a in zip(prog.leaves, leaves):
            vals[n] = a
        for pos, (fn, ins, out, _) in enumerate(prog.steps):
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            t0 = time.perf_counter()
            vals[out] = fn(*[vals[i] for i in ins])
            host[pos] += time.perf_counter() - t0
            end.record()
            end.synchronize()
            dev[pos] += cupy.cuda.get_elapsed_time(start, end) / 1e3
    lines = [f"engine MLP b{batch}: fast run {fast_host:.0f} us host, {wall:.0f} us wall; "
             f"{len(prog.steps)} steps, {len(prog.groups)} fused groups covering "
             f"{sum(g.end - g.start for g in prog.groups.values())} steps",
             f"  {'step':>4} {'op':<22} {'shape':<16} {'host us':>8} {'device us':>9}"]
    by_op = defaultdict(lambda: [0.0, 0.0, 0])
    for pos, name in enumerate(prog.names):
        h, d = host[pos] / reps * 1e6, dev[pos] / reps * 1e6
        shape = str(prog.metas[prog.steps[pos][2]].shape)
        lines.append(f"  {pos:>4} {name:<22} {shape:<16} {h:8.1f} {d:9.1f}")
        agg = by_op[name]
        agg[0] += h
        agg[1] += d
        agg[2] += 1
    lines.append("  by op (host us, device us, steps):")
    for name, (h, d, k) in sorted(by_op.items(), key=lambda kv: -max(kv[1][0], kv[1][1])):
        lines.append(f"    {name:<22} {h:8.1f} {d:9.1f} {k:4d}")
    return lines


def torch_rows(batch) -> list[str]:
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812
    torch.backends.cuda.matmul.allow_tf32 = False
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        params += [torch.tensor(rng.standard_normal((fan_out, fan_in)) / fan_in ** 0.5,
                                dtype=torch.float32, device="cuda", requires_grad=True),
                   torch.zeros(fan_out, device="cuda", requires_grad=True)]
    x = torch.randn(batch, SIZES[0], device="cuda")
    y = torch.randint(0, SIZES[-1], (batch,), device="cuda")

    def step():
        h = x
        for k in range(3):
            h = F.linear(h, params[2 * k], params[2 * k + 1])
            if k < 2:
                h = torch.relu(h)
        loss = F.cross_entropy(h, y)
        return torch.autograd.grad(loss, params)
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    host = host_us(step, n=100)
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=18)
    return [f"torch MLP b{batch}: {host:.0f} us host per step (10 steps profiled)", table]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    args = p.parse_args()
    out = []
    for part in (launch_rows, lambda: step_rows(1024), lambda: step_rows(8192),
                 lambda: torch_rows(1024), lambda: torch_rows(8192)):
        try:
            lines = part()
        except Exception as e:  # noqa: BLE001  (one part failing must not hide the others)
            lines = [f"failed: {type(e).__name__}: {e}"]
        print("\n".join(lines), flush=True)
        out += lines
    if args.out:
        Path(args.out).write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
