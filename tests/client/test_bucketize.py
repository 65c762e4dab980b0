"""torch.bucketize and torch.searchsorted against PyTorch: left and right sides, int32
results, scalars, N-D sorted sequences, sorter, and the errors."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg
from torchref import raises_as_torch

CALLS = [
    "L.bucketize(v, b)", "L.bucketize(v, b, right=True)", "L.bucketize(v, b, out_int32=True)",
    "L.bucketize(3.0, b)", "L.bucketize(v.int(), b)", "L.searchsorted(b, v)",
    "L.searchsorted(b, v, right=True)", "L.searchsorted(b, v, side='right')",
    "L.searchsorted(m, L.tensor([[3.0], [3.0]]))",
    "L.searchsorted(m, L.tensor([[0.5, 6.0], [4.0, 9.0]]))",
    "L.searchsorted(b, 4.0)", "L.searchsorted(b.int(), v)",
    "L.searchsorted(L.tensor([7.0, 1.0, 5.0, 3.0]), v, sorter=L.tensor([1, 3, 2, 0]))",
    "L.searchsorted(b, v, out_int32=True, right=True)", "L.searchsorted(b, L.tensor([]))",
]
ERRORS = [
    "L.bucketize(v, b.reshape(2, 2))", "L.bucketize(L.tensor([1.0]), L.tensor(1.0))",
    "L.searchsorted(m, L.tensor([3.0, 4.0]))", "L.searchsorted(b, v, side='left', right=True)",
    "L.searchsorted(b, v, side='foo')", "L.searchsorted(b, v, sorter=L.tensor([0, 1]))",
    "L.searchsorted(b, v, sorter=L.tensor([0.0, 1, 2, 3]))", "L.searchsorted(L.tensor(1.0), v)",
    "L.searchsorted(m, 3.0)",
]


def _env(lib):
    return {"L": lib, "b": lib.tensor([1.0, 3.0, 5.0, 7.0]),
            "v": lib.tensor([[0.0, 3.0, 6.0], [9.0, 1.0, 5.0]], requires_grad=True),
            "m": lib.tensor([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])}


@pytest.mark.parametrize("call", CALLS)
def test_results_match_pytorch(call):
    found = []
    for lib in (rg, torch):
        r = eval(call, _env(lib))
        found.append((list(r.shape), str(r.dtype), r.tolist(), r.requires_grad))
    assert found[0] == found[1]


@pytest.mark.parametrize("call", ERRORS)
def test_errors_match_pytorch(call):
    raises_as_torch(lambda lib: eval(call, _env(lib)), torch, rg)
