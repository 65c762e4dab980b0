"""One load client: SDK calls (a gradient through a few tanh(x @ W) layers, fresh x each
time, so no call is a cache hit) at a fixed rate, each checked against NumPy and written
as a JSON line: start, latency, ok, error. SIGINT ends it after the call in progress.

    python scripts/faults/client.py HOST:PORT OUT.jsonl [--rate R] [--max-seconds S]
"""

from __future__ import annotations

import argparse
import json
import signal
import time

import numpy as np


def reference_grad(x: np.ndarray, w: np.ndarray, layers: int) -> np.ndarray:
    outs = []
    h = x.astype(np.float64)
    for _ in range(layers):
        h = np.tanh(h @ w)
        outs.append(h)
    g = np.ones_like(h)
    for t in reversed(outs):
        g = (g * (1 - t * t)) @ w.T
    return g


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("address")
    p.add_argument("out")
    p.add_argument("--client", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    a = p.parse_args()
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))

    import remotegrad as torch
    torch.connect(a.address, timeout=a.timeout)
    rng = np.random.default_rng(1000 + a.client)
    w = (rng.standard_normal((a.size, a.size)) / np.sqrt(a.size)).astype(np.float32)
    wt = torch.tensor(w)
    end = time.monotonic() + a.max_seconds
    interval = 1.0 / a.rate if a.rate > 0 else 0.0
    next_at = time.monotonic()
    with open(a.out, "a", buffering=1) as out:
        while not stopping and time.monotonic() < end:
            x = rng.standard_normal((a.size, a.size)).astype(np.float32)
            start_wall, start = time.time(), time.perf_counter()
            ok, error = True, ""
            try:
                xt = torch.tensor(x, requires_grad=True)
                h = xt
                for _ in range(a.layers):
                    h = torch.tanh(h @ wt)
                h.sum().backward()
                got = xt.grad.numpy()
                want = reference_grad(x, w.astype(np.float64), a.layers)
                if not np.allclose(got, want, rtol=1e-3, atol=1e-3):
                    ok, error = False, "wrong gradient"
            except Exception as e:  # noqa: BLE001  (every failure is a figure)
                ok, error = False, f"{type(e).__name__}: {e}"[:300]
            out.write(json.dumps({"client": a.client, "start": start_wall,
                                  "latency": time.perf_counter() - start, "ok": ok,
                                  "error": error}) + "\n")
            if interval:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))


if __name__ == "__main__":
    main()
