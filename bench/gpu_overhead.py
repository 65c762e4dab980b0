"""Where a GPU step's time goes: host cost per launch (CuPy and PyTorch) and, for the MLP
step, the engine's host time against the device time. Not a test; prints a table.

    python bench/gpu_overhead.py [--out FILE]

Host time is measured without synchronising inside the loop (the device queues the
work); a call whose host time exceeds its device time is launch-bound, and then the
step time is the host time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.engine helpers


def host_us(fn, n=2000) -> float:
    """Mean host microseconds per call, queueing only (the device syncs at the end)."""
    import cupy
    for _ in range(20):
        fn()
    cupy.cuda.get_current_stream().synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    host = (time.perf_counter() - t) / n * 1e6
    cupy.cuda.get_current_stream().synchronize()
    return host


def launch_rows():
    import cupy
    import torch
    a = cupy.ones((1024,), cupy.float32)
    m = cupy.ones((64, 64), cupy.float32)
    ta = torch.ones(1024, device="cuda")
    tm = torch.ones(64, 64, device="cuda")
    fused = cupy.fuse(lambda x: cupy.tanh(x) * 2 + 1)
    fused(a)

    def torch_sync():
        torch.cuda.synchronize()
    rows = [("cupy ufunc add", host_us(lambda: cupy.add(a, a))),
            ("cupy fused (3 ops)", host_us(lambda: fused(a))),
            ("cupy matmul 64x64", host_us(lambda: cupy.matmul(m, m))),
            ("cupy sum", host_us(lambda: a.sum())),
            ("torch add", host_us(lambda: torch.add(ta, ta))),
            ("torch matmul 64x64", host_us(lambda: torch.matmul(tm, tm)))]
    torch_sync()
    return rows


def mlp_rows(batch):
    """Engine MLP step (as in tests.engine.test_gpu): execute()'s host time vs the wall."""
    import cupy

    from remotegrad.worker.engine import compile_graph
    from tests.engine import helpers
    from tests.engine.test_gpu import mlp_graph
    helpers.XP = cupy
    eg, targets = mlp_graph(batch=batch, sizes=(784, 1024, 1024, 10))
    eg.prog = compile_graph(eg.g, targets, cupy)
    eg.run()
    eg.run()
    leaves = [eg.device[h] for h in eg.prog.leaf_hashes]
    prog = eg.prog
    host = host_us(lambda: prog.run(leaves), n=200)
    stream = cupy.cuda.get_current_stream()
    t = time.perf_counter()
    for _ in range(50):
        prog.run(leaves)
    stream.synchronize()
    wall = (time.perf_counter() - t) / 50 * 1e6
    steps = len(prog.steps)
    groups = len(prog.groups)
    fused = sum(g.end - g.start for g in prog.groups.values())
    launches = steps - fused + groups
    return [(f"engine MLP b{batch}: host per step ({launches} calls)", host),
            (f"engine MLP b{batch}: wall per step", wall)]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    args = p.parse_args()
    rows = launch_rows() + mlp_rows(1024) + mlp_rows(8192)
    text = "\n".join(f"{name:<48} {us:10.1f} us" for name, us in rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
