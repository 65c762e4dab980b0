"""How graphs reach the engine: the embedded path hands it Python objects (nothing encoded,
hashed or copied), and long loops that read rarely send one step at a time, with the same
values as PyTorch step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad import _request, _session
from remotegrad.proto import codec


@pytest.fixture
def graphs(monkeypatch):
    """The size of each graph the session evaluates (nodes as they travel)."""
    session = _session.current()
    sizes: list[int] = []
    real = session.evaluate

    def counting(nodes, keep):
        sizes.append(len(_request.by_identity(nodes)[0]))
        return real(nodes, keep)
    monkeypatch.setattr(session, "evaluate", counting)
    return sizes


def _dynamic_net(lib, steps: int, read_every: int):
    """PyTorch's control-flow + weight-sharing model: a cubic plus 0-2 extra terms sharing
    one coefficient, SGD with momentum, the loss read every `read_every` steps."""
    x = lib.linspace(-math.pi, math.pi, 200, dtype=lib.float64)
    y = lib.sin(x)
    coef = [lib.tensor(c, dtype=lib.float64, requires_grad=True)
            for c in (0.1, -0.2, 0.05, 0.01, -0.003)]
    opt = lib.optim.SGD(coef, lr=1e-4, momentum=0.9)
    losses = []
    for s in range(steps):
        a, b, c, d, e = coef
        pred = a + b * x + c * x ** 2 + d * x ** 3
        for k in range(4, 4 + s % 3):
            pred = pred + e * x ** k
        loss = (pred - y).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s % read_every == read_every - 1:
            losses.append(loss.item())
    return losses, [float(c) for c in coef]


def test_a_loop_that_reads_rarely_sends_one_step_at_a_time(graphs):
    losses, coef = _dynamic_net(rg, steps=60, read_every=20)
    want_losses, want_coef = _dynamic_net(torch, steps=60, read_every=20)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    np.testing.assert_allclose(coef, want_coef, rtol=1e-10)
    # Each optimiser step sends the previous step's updates: the graphs stay one step
    # large however long the stretch between reads.
    assert len(graphs) >= 55
    assert max(graphs) <= 2 * min(graphs[2:]), graphs


def test_updates_by_hand_are_sent_past_a_bound(graphs, monkeypatch):
    monkeypatch.setattr(_session, "FLUSH_AFTER", 20)
    w = rg.zeros(3, dtype=rg.float64, requires_grad=True)
    wt = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    x = np.array([0.5, -1.0, 2.0])
    for lib, p in ((rg, w), (torch, wt)):
        for _ in range(200):  # never read inside the loop
            loss = ((p * lib.tensor(x) - 1.0) ** 2).sum()
            loss.backward()
            with lib.no_grad():
                p -= 0.05 * p.grad
                p.grad = None
    np.testing.assert_allclose(w.detach().numpy(), wt.detach().numpy(), rtol=1e-12)
    assert len(graphs) >= 9  # one flush per 20 updates, then the read
    assert max(graphs) < 40 * max(1, min(graphs)), graphs


def test_reading_after_the_step_is_one_round_trip(graphs):
    model = rg.nn.Linear(4, 2)
    opt = rg.optim.SGD(model.parameters(), lr=0.1)
    x = rg.tensor(np.ones((3, 4), dtype=np.float32))
    for _ in range(5):
        before = len(graphs)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # the updates travel with the loss: nothing is sent twice
        assert len(graphs) == before + 1


@pytest.mark.skipif(_session.current().address != "local", reason="the embedded path")
def test_the_embedded_path_encodes_hashes_and_copies_nothing(monkeypatch):
    used = []
    for name in ("array_hash", "encode_array", "encode_request", "decode_array"):
        real = getattr(codec, name)
        monkeypatch.setattr(codec, name, lambda *a, _real=real, _name=name, **k: (
            used.append(_name), _real(*a, **k))[1])
    data = np.arange(12.0).reshape(3, 4)
    x = rg.tensor(data, requires_grad=True)
    y = (x * 2).sin().sum()
    y.backward()
    view = x.detach().reshape(4, 3)
    assert float(y) == pytest.approx(float(np.sin(data * 2).sum()))
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(data * 2))
    assert np.shares_memory(view.numpy(), x.detach().numpy())  # a view, not a copy
    assert used == []


@pytest.mark.skipif(_session.current().address != "local", reason="the embedded engine's plans")
@pytest.mark.parametrize("make", [lambda ps: rg.optim.Adam(ps, lr=1e-2),
                                  lambda ps: rg.optim.AdamW(ps, lr=1e-2),
                                  lambda ps: rg.optim.SGD(ps, lr=1e-2, momentum=0.9)],
                         ids=["Adam", "AdamW", "SGD-momentum"])
def test_training_steps_reuse_one_plan(make):
    """What changes from step to step (Adam's bias corrections) travels as data, not as the
    graph's structure: after the first steps no step plans anything new."""
    from remotegrad.worker import engine
    engine.plans.clear()  # counted from empty: a full cache would hide new plans
    rng = np.random.default_rng(0)
    model = rg.nn.Sequential(rg.nn.Linear(6, 8), rg.nn.Tanh(), rg.nn.Linear(8, 3))
    opt = make(model.parameters())

    def step():
        x = rg.tensor(rng.standard_normal((5, 6)), dtype=rg.float32)
        y = rg.tensor(rng.integers(0, 3, 5))
        opt.zero_grad()
        loss = rg.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    for _ in range(3):
        step()
    planned = len(engine.plans)
    for _ in range(5):
        step()
    assert len(engine.plans) == planned
