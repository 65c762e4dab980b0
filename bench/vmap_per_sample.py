"""Per-sample gradients of a small MLP (the torch.func recipe: vmap over grad of a
functional_call, in_dims=(None, 0, 0)), vmap by the catalog's batching rules against vmap
per slice (remotegrad.func._batching.ENABLED = False: the function run once per sample and
stacked), in the same run, embedded engine: nodes recorded, CPU seconds to record, and CPU
seconds to record + compute (one round trip), interleaved rounds, new inputs every call (no
cached result), each checked against PyTorch's torch.func (timed too, for reference).

    .venv/bin/python bench/vmap_per_sample.py [--batch 64] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.func as tf

import remotegrad as rg
import remotegrad.func as rf
from remotegrad.func import _batching

IN, HIDDEN, OUT = 16, 32, 4


def _model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(IN, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN),
                         nn.ReLU(), nn.Linear(HIDDEN, OUT))


def _per_sample(lib, func, model, params, X, Y):
    F = lib.nn.functional

    def loss(p, x, y):
        out = func.functional_call(model, p, (x.unsqueeze(0),))
        return F.cross_entropy(out, y.unsqueeze(0))
    return func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, X, Y)


def _nodes(tensors) -> int:
    seen, todo = set(), [t._node for t in tensors]
    while todo:
        n = todo.pop()
        if id(n) not in seen:
            seen.add(id(n))
            todo.extend(n.inputs)
    return len(seen)


def _one(batched: bool, model, params, X, Y):
    _batching.ENABLED = batched
    try:
        t0 = time.process_time()
        grads = _per_sample(rg, rf, model, params, X, Y)
        t1 = time.process_time()
        nodes = _nodes(list(grads.values()))  # before the read: then they are values
        t2 = time.process_time()
        values = [g.numpy() for g in grads.values()]
        t3 = time.process_time()
    finally:
        _batching.ENABLED = True
    return nodes, t1 - t0, (t1 - t0) + (t3 - t2), values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    rg.connect("local")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((args.batch, IN)), rng.integers(0, OUT, args.batch)
    model, model_t = _model(rg), _model(torch)
    model_t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    params = {k: v.detach() for k, v in model.named_parameters()}
    params_t = {k: v.detach() for k, v in model_t.named_parameters()}
    Yr, Yt = rg.tensor(Y), torch.tensor(Y)
    rows = {True: [], False: []}
    for i in range(args.rounds):  # interleaved: the machine's noise falls on both
        for batched in (True, False):
            # new inputs every call: no result cached from an earlier round
            Xi = (X + 1e-3 * (2 * i + batched)).astype(np.float32)
            want = _per_sample(torch, tf, model_t, params_t, torch.tensor(Xi), Yt)
            nodes, rec, total, values = _one(batched, model, params, rg.tensor(Xi), Yr)
            rows[batched].append((nodes, rec, total))
            for v, (k, t) in zip(values, want.items()):
                np.testing.assert_allclose(v, t.numpy(), rtol=2e-4, atol=2e-5, err_msg=k)
    Xt = torch.tensor(X.astype(np.float32))
    t0 = time.process_time()
    for _ in range(args.rounds):
        _per_sample(torch, tf, model_t, params_t, Xt, Yt)
    torch_s = (time.process_time() - t0) / args.rounds
    med = {b: np.median(np.array(r), axis=0) for b, r in rows.items()}
    print(f"per-sample gradients, MLP {IN}-{HIDDEN}-{HIDDEN}-{OUT}, B={args.batch}, "
          f"float32, embedded engine, median of {args.rounds} interleaved rounds (CPU time)")
    print(f"{'vmap':<26}{'nodes':>8}{'record s':>11}{'record+compute s':>19}")
    for b, label in ((False, "per slice (before)"), (True, "batching rules (after)")):
        n, rec, total = med[b]
        print(f"{label:<26}{int(n):>8}{rec:>11.4f}{total:>19.4f}")
    ratio = med[False] / med[True]
    print(f"ratios per-slice/rules: nodes {ratio[0]:.1f}x, record {ratio[1]:.1f}x, "
          f"record+compute {ratio[2]:.1f}x")
    print(f"torch.func (reference, same process): {torch_s:.4f} s; rules/torch "
          f"{med[True][2] / torch_s:.1f}x")


if __name__ == "__main__":
    main()
