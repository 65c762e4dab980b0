"""NAdam, RAdam and Adagrad send what changes from step to step (bias corrections, NAdam's
momentum schedule, Adagrad's decayed learning rate) as 0-d tensors, not as numbers in
the graph's structure: after the first steps a training loop plans nothing new. And the
parameters still follow torch.optim exactly, in float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad import _session
from torchref import close

OPTIMISERS = {
    "NAdam": dict(lr=1e-2),
    "NAdam-decoupled": dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
    "RAdam": dict(lr=1e-2),
    "RAdam-decay": dict(lr=1e-2, weight_decay=0.1),
    "Adagrad": dict(lr=1e-2, lr_decay=0.05),
    "Adagrad-plain": dict(lr=1e-2, weight_decay=0.1, initial_accumulator_value=0.2),
}


def _make(lib, key, params):
    return getattr(lib.optim, key.split("-")[0])(params, **OPTIMISERS[key])


# RAdam switches from plain momentum to its rectified update once the variance estimate
# is long enough (rho_t > 5: step 6 with beta2 = 0.999): two structures, each planned once.
WARMUP = 8


@pytest.mark.parametrize("key", sorted(OPTIMISERS))
def test_training_steps_reuse_one_plan(key):
    # (checked here, not at collection: the session is connected by a fixture)
    if _session.current().address != "local":
        pytest.skip("the embedded engine's plans")
    from remotegrad.worker import engine
    engine.plans.clear()  # counted from empty: a full cache would hide new plans
    rng = np.random.default_rng(0)
    model = rg.nn.Sequential(rg.nn.Linear(6, 8), rg.nn.Tanh(), rg.nn.Linear(8, 3))
    opt = _make(rg, key, model.parameters())

    def step():
        x = rg.tensor(rng.standard_normal((5, 6)), dtype=rg.float32)
        y = rg.tensor(rng.integers(0, 3, 5))
        opt.zero_grad()
        loss = rg.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    for _ in range(WARMUP):
        step()
    planned = len(engine.plans)
    assert planned > 0  # the steps ran on this process's engine
    for _ in range(6):
        step()
    assert len(engine.plans) == planned, f"{key}: steps after the warm-up planned anew"


R = np.random.default_rng(3)
W0 = R.standard_normal((4, 5))
B0 = R.standard_normal(4)
X = R.standard_normal((7, 5))
Y = R.standard_normal((7, 4))


def _trajectory(lib, key, dtype, steps):
    w = lib.tensor(W0.astype(dtype), requires_grad=True)
    b = lib.tensor(B0.astype(dtype), requires_grad=True)
    opt = _make(lib, key, [w, b])
    x, y = lib.tensor(X.astype(dtype)), lib.tensor(Y.astype(dtype))
    seen = []
    for s in range(steps):
        opt.zero_grad()
        ((lib.tanh(x @ w.T + b) - y) ** 2).mean().backward()
        opt.step()
        seen += [(f"step {s} w", w.detach().clone()), (f"step {s} b", b.detach().clone())]
    return seen, opt.state_dict()["state"]


@pytest.mark.parametrize("key", sorted(OPTIMISERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_steps_match_pytorch(key, dtype):
    """Past RAdam's switch and through Adagrad's decay. The gradients are computed by
    different kernels (a matmul's sums in another order): float32 runs agree to a few
    ulps of the parameters, float64 ones to rounding."""
    tol = dict(rtol=2e-6, atol=2e-7) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    ours, state_o = _trajectory(rg, key, dtype, steps=12)
    theirs, state_t = _trajectory(torch, key, dtype, steps=12)
    for (what, a), (_, b) in zip(ours, theirs):
        close(a, b, what=f"{key} {dtype} {what}", **tol)
    for i, entries in state_t.items():
        assert list(state_o[i]) == list(entries)
        for name, value in entries.items():
            close(state_o[i][name], value, what=f"state {i} {name}", **tol)


def _same_gradients(lib, key, dtype, steps):
    """The optimiser alone, fed the same gradients in both libraries."""
    rng = np.random.default_rng(9)
    grads = [rng.standard_normal((16, 33)).astype(dtype) for _ in range(steps)]
    w = lib.tensor(rng.standard_normal((16, 33)).astype(dtype), requires_grad=True)
    opt = _make(lib, key, [w])
    out = []
    for g in grads:
        w.grad = lib.tensor(g)
        opt.step()
        out.append(w.detach().clone())
    return out


# float32: PyTorch's CPU kernels round differently from numpy's in the last bit at times
# (its float32 sqrt, fused multiply-adds in add(alpha=) and lerp), so a step agrees to an
# ulp or two and 20 steps to a few; an update off by a scalar (a step-dependent factor
# rounded or taken at the wrong step) is off by far more.
SAME_TOL = {"float32": dict(rtol=5e-7, atol=5e-7), "float64": dict(rtol=1e-13, atol=1e-13)}


@pytest.mark.parametrize("key", sorted(OPTIMISERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_updates_from_the_same_gradients_are_pytorchs(key, dtype):
    ours = _same_gradients(rg, key, dtype, steps=20)
    theirs = _same_gradients(torch, key, dtype, steps=20)
    for s, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), err_msg=f"{key} step {s}",
                                   **SAME_TOL[dtype])
