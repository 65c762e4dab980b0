"""Small surfaces PyTorch scripts lean on: cuda queries, allclose/isclose/equal,
utils.data (TensorDataset, DataLoader, random_split)."""

from __future__ import annotations

import numpy as np
import torch

import remotegrad as rg
from torchref import close


def test_cuda_queries_and_device_idiom():
    assert rg.cuda.is_available() is False and rg.cuda.device_count() == 0
    device = rg.device("cuda" if rg.cuda.is_available() else "cpu")
    assert str(rg.ones(2).to(device).device) == "cpu"


def test_comparisons_match():
    a = np.array([1.0, 2.0, np.inf, np.nan, 1e-9], dtype="float32")
    b = np.array([1.0 + 1e-6, 2.1, np.inf, np.nan, 0.0], dtype="float32")
    ao, bo, at, bt = rg.tensor(a), rg.tensor(b), torch.tensor(a), torch.tensor(b)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1}):
        close(rg.isclose(ao, bo, **kw), torch.isclose(at, bt, **kw))
        assert rg.allclose(ao, bo, **kw) == torch.allclose(at, bt, **kw)
    assert rg.equal(ao[:2], ao[:2]) and not rg.equal(ao[:2], bo[:2])
    assert ao.allclose(ao, equal_nan=True)


def test_dataloader_over_tensor_dataset():
    x = rg.tensor(np.arange(20, dtype="float32").reshape(10, 2))
    y = rg.tensor(np.arange(10))
    ds = rg.utils.data.TensorDataset(x, y)
    assert len(ds) == 10 and ds[3][1].item() == 3
    batches = list(rg.utils.data.DataLoader(ds, batch_size=4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert batches[1][1].tolist() == [4, 5, 6, 7]
    rg.manual_seed(0)
    shuffled = list(rg.utils.data.DataLoader(ds, batch_size=3, shuffle=True, drop_last=True))
    assert len(shuffled) == 3
    seen = sorted(v for b in shuffled for v in b[1].tolist())
    assert len(set(seen)) == 9
    for xb, yb in shuffled:
        assert (xb[:, 0] == yb * 2).all()
    parts = rg.utils.data.random_split(ds, [0.7, 0.3])
    assert [len(p) for p in parts] == [7, 3]
    items = list(rg.utils.data.DataLoader(parts[1], batch_size=2))
    assert items[0][0].shape == rg.Size([2, 2])
