"""Tensor transport through a real cluster: large leaves go up once, streamed; a repeat
sends no tensor bytes (counted by the gateway's own metrics); large results come back
streamed; values updated in place stay in the cluster."""

from __future__ import annotations

import numpy as np
import pytest

import remotegrad as torch
from remotegrad import _remote

BYTES_IN = "remotegrad_tensor_bytes_in_total"
BYTES_OUT = "remotegrad_tensor_bytes_out_total"


@pytest.fixture
def session(cluster):
    s = torch.connect(cluster.address)
    yield s
    torch.connect("local")


def test_repeat_with_same_64mib_tensor_sends_no_tensor_bytes(cluster, session):
    big = np.random.default_rng(7).standard_normal(16 << 20).astype(np.float32)  # 64 MiB
    before = cluster.metric(BYTES_IN)
    assert float((torch.from_numpy(big) * 2).sum()) == pytest.approx(2 * big.sum(), rel=1e-3)
    first = cluster.metric(BYTES_IN) - before
    assert first >= big.nbytes  # went up once, streamed in chunks
    # A new session (another client) asks first and finds the cluster holds it.
    torch.connect(cluster.address)
    before = cluster.metric(BYTES_IN)
    assert float((torch.from_numpy(big) * 3).mean()) == pytest.approx(3 * big.mean(),
                                                                     rel=1e-3, abs=1e-6)
    assert cluster.metric(BYTES_IN) - before < 1024  # only the scalar constant's graph


def test_large_result_is_streamed_back(cluster, session):
    x = torch.from_numpy(np.arange(1 << 20, dtype=np.float32))  # 4 MiB > 1 MiB inline limit
    before = cluster.metric(BYTES_OUT)
    y = (x * 0.5).numpy()
    np.testing.assert_array_equal(y, np.arange(1 << 20, dtype=np.float32) * 0.5)
    assert cluster.metric(BYTES_OUT) - before >= y.nbytes


def test_training_loop_request_size_stays_flat(cluster, session, monkeypatch):
    sizes = []
    real = _remote.build_request

    def measured(*args, **kwargs):
        req, uploads = real(*args, **kwargs)
        sizes.append(req.ByteSize() + sum(len(u.data) for u in uploads))
        return req, uploads
    monkeypatch.setattr(_remote, "build_request", measured)
    rng = np.random.default_rng(0)
    xs_np = rng.standard_normal((64, 8)).astype(np.float32)
    ys_np = xs_np @ rng.standard_normal((8, 1)).astype(np.float32) + 0.5
    xs, ys = torch.from_numpy(xs_np), torch.from_numpy(ys_np)
    w = torch.zeros(8, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    losses = []
    for _ in range(200):
        loss = ((xs.matmul(w) + b - ys) ** 2).mean() if hasattr(xs, "matmul") else \
            (((xs * w.reshape(1, 8)).sum(dim=1, keepdim=True) + b - ys) ** 2).mean()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w -= 0.05 * w.grad
            b -= 0.05 * b.grad
        w.grad = None
        b.grad = None
    assert losses[-1] < 0.1 * losses[0]
    assert len(sizes) == 200
    # After the first steps (which carry the data), every request is the same size.
    assert max(sizes[5:]) <= min(sizes[5:]) * 1.05, sizes[:10]
    assert max(sizes[5:]) < 8192
