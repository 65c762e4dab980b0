"""Round trips: one per materialisation, none per op; a training loop's requests stay
the same size from step to step (updated parameters never drag their history along)."""

from __future__ import annotations

import numpy as np

import remotegrad as rg
import remotegrad.nn.functional as F


def test_no_round_trip_until_a_value_is_needed(requests):
    x = rg.randn(4, 4, requires_grad=True)
    y = ((x @ x).relu() * 3 + 1).mean()
    assert requests == []
    y.backward()
    assert requests == []
    y.item()
    assert len(requests) == 1
    x.grad.numpy()
    assert len(requests) == 2
    print(y, x.grad)
    assert len(requests) == 2


def test_training_requests_stay_flat_over_200_steps(requests):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 10)).astype("float32")
    y = rng.integers(0, 3, 32)
    model = rg.nn.Sequential(rg.nn.Linear(10, 16), rg.nn.Tanh(), rg.nn.Linear(16, 3))
    opt = rg.optim.Adam(model.parameters(), lr=1e-2)
    sizes, losses = [], []
    for _ in range(200):
        opt.zero_grad()
        loss = F.cross_entropy(model(rg.tensor(x)), rg.tensor(y))
        loss.backward()
        opt.step()
        before = len(requests)
        losses.append(loss.item())
        assert len(requests) == before + 1  # one round trip per step
        sizes.append(len(requests[-1]))
    assert max(sizes[10:]) <= sizes[10] * 1.05, (sizes[10], max(sizes[10:]))
    assert losses[-1] < losses[0] * 0.5


def test_training_memory_stays_flat():
    """Computed values drop their history, so no step keeps the previous steps' graphs."""
    import gc

    from remotegrad._node import Node
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 5)).astype("float32")
    y = rng.integers(0, 2, 16)
    model = rg.nn.Sequential(rg.nn.Linear(5, 8), rg.nn.ReLU(), rg.nn.Linear(8, 2))
    opt = rg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    counts = []
    for step in range(60):
        opt.zero_grad()
        loss = F.cross_entropy(model(rg.tensor(x)), rg.tensor(y))
        loss.backward()
        opt.step()
        loss.item()
        if step in (10, 59):
            gc.collect()
            counts.append(sum(1 for o in gc.get_objects() if isinstance(o, Node)))
    assert counts[1] <= counts[0] + 5, counts


def test_pieces_of_a_tensor_come_back_together(requests):
    x = rg.randn(4, 3, requires_grad=True) * 2
    rows = list(x)
    parts = x.split(1)
    assert [type(r.grad_fn).__name__ for r in rows] == ["UnbindBackward0"] * 4
    values = [r.tolist() for r in rows]
    assert len(requests) == 1
    [p.tolist() for p in parts]
    assert len(requests) == 2
    assert values == x.tolist()
