"""Shape and dtype rules fail with PyTorch's own message (first line), at graph-build
time, before any data exists."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from remotegrad.proto.catalog import OpError
from remotegrad.worker.engine import Graph

Z = torch.zeros


def _leaf(g, shape, dtype="float32"):
    return g.add("leaf", (), {"hash": f"{shape}{dtype}{len(g)}", "dtype": dtype,
                              "shape": shape})


def _ours(op, specs, attrs=None):
    g = Graph()
    ids = [_leaf(g, *s) if len(s) == 2 and isinstance(s[1], str) else _leaf(g, s)
           for s in specs]
    g.add(op, ids, attrs or {})


L = "int64"
CASES = {
    "cat": (lambda: torch.cat([Z(2, 3), Z(2, 4)]), "cat", [(2, 3), (2, 4)], {}),
    "stack": (lambda: torch.stack([Z(2, 3), Z(2, 4)]), "stack", [(2, 3), (2, 4)], {}),
    "reshape": (lambda: Z(2, 3).reshape(4, 2), "reshape", [(2, 3)], {"shape": (4, 2)}),
    "transpose": (lambda: Z(2, 3).transpose(0, 2), "transpose", [(2, 3)],
                  {"dim0": 0, "dim1": 2}),
    "matmul1d": (lambda: Z(3) @ Z(4), "matmul", [(3,), (4,)], {}),
    "matmul0d": (lambda: torch.matmul(Z(()), Z(4)), "matmul", [(), (4,)], {}),
    "mean_int": (lambda: Z(3, dtype=torch.int64).mean(), "mean", [((3,), L)], {}),
    "expand": (lambda: Z(2, 3).expand(2, 4), "expand", [(2, 3)], {"shape": (2, 4)}),
    "softmax": (lambda: Z(2, 3).softmax(2), "softmax", [(2, 3)], {"dim": 2}),
    "unsqueeze": (lambda: Z(2, 3).unsqueeze(4), "unsqueeze", [(2, 3)], {"dim": 4}),
    "mm_dtype": (lambda: torch.mm(Z(2, 3), Z(3, 2, dtype=torch.float64)), "mm",
                 [(2, 3), ((3, 2), "float64")], {}),
    "linear": (lambda: F.linear(Z(2, 3), Z(4, 5)), "linear", [(2, 3), (4, 5)], {}),
    "cross_entropy": (lambda: F.cross_entropy(Z(3, 4), Z(2, dtype=torch.long)),
                      "cross_entropy", [(3, 4), ((2,), L)], {}),
    "conv2d": (lambda: F.conv2d(Z(1, 3, 5, 5), Z(4, 2, 3, 3)), "conv2d",
               [(1, 3, 5, 5), (4, 2, 3, 3)], {}),
    "narrow": (lambda: Z(3).narrow(0, 2, 2), "narrow", [(3,)],
               {"dim": 0, "start": 2, "length": 2}),
    "amax": (lambda: Z(0, 3).amax(0), "amax", [(0, 3)], {"dim": 0}),
    "max": (lambda: Z(0).max(), "max", [(0,)], {}),
    "clamp": (lambda: torch.clamp(Z(3)), "clamp", [(3,)], {}),
    "gather": (lambda: torch.gather(Z(2, 3), 1, Z(2, 3, 1, dtype=torch.long)), "gather",
               [(2, 3), ((2, 3, 1), L)], {"dim": 1}),
    "where": (lambda: torch.where(Z(3), Z(3), Z(3)), "where", [(3,), (3,), (3,)], {}),
    "permute": (lambda: Z(2, 3).permute(0, 0), "permute", [(2, 3)], {"dims": (0, 0)}),
    "bmm": (lambda: torch.bmm(Z(2, 3, 4), Z(3, 4, 5)), "bmm", [(2, 3, 4), (3, 4, 5)], {}),
    "layer_norm": (lambda: F.layer_norm(Z(2, 3), (4,)), "layer_norm", [(2, 3)],
                   {"normalized_shape": (4,)}),
    "pad": (lambda: F.pad(Z(2, 3), (1, 2, 3)), "pad", [(2, 3)], {"pad": (1, 2, 3)}),
    "repeat": (lambda: Z(2, 3).repeat(2), "repeat", [(2, 3)], {"repeats": (2,)}),
    "squeeze": (lambda: Z(2, 3).squeeze(3), "squeeze", [(2, 3)], {"dim": 3}),
    "flatten": (lambda: Z(2, 3, 4).flatten(2, 1), "flatten", [(2, 3, 4)],
                {"start_dim": 2, "end_dim": 1}),
    "einsum": (lambda: torch.einsum("ij,jk->ik", Z(2, 3), Z(4, 5)), "einsum",
               [(2, 3), (4, 5)], {"equation": "ij,jk->ik"}),
    "index_oob": (lambda: Z(2, 3)[5], "index", [(2, 3)], {"key": "5"}),
    "index_many": (lambda: Z(2, 3)[0, 0, 0], "index", [(2, 3)], {"key": "0,0,0"}),
    "broadcast": (lambda: Z(3, 4) + Z(5, 6), "add", [(3, 4), (5, 6)], {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_message_is_pytorchs(name):
    torch_call, op, specs, attrs = CASES[name]
    with pytest.raises(Exception) as theirs:
        torch_call()
    want = str(theirs.value).splitlines()[0]
    with pytest.raises(OpError) as ours:
        _ours(op, specs, attrs)
    assert str(ours.value) == want
