"""atleast_1d/2d/3d, hstack, vstack, dstack, column_stack, meshgrid, result_type,
promote_types and can_cast against PyTorch: shapes, values, dtypes, grad_fn names,
gradients, warnings and errors."""

from __future__ import annotations

import warnings

import pytest
import torch

import remotegrad as rg
from torchref import raises_as_torch

CALLS = [
    "L.atleast_1d(s)", "L.atleast_2d(v)", "L.atleast_2d(s)", "L.atleast_3d(v)",
    "L.atleast_3d(m)", "L.atleast_3d(s)", "L.atleast_2d(m)", "L.atleast_1d(v, s)",
    "L.atleast_2d([v, m])",
    "L.hstack([s, s])", "L.hstack([m, m2])", "L.hstack((v, v))", "L.hstack([iv, v])",
    "L.vstack([s, s])", "L.vstack([v, v])", "L.vstack([m, v[:2].reshape(1, 2)])",
    "L.dstack([s, s])", "L.dstack([v, v])", "L.dstack([m, m])",
    "L.column_stack([s, s])", "L.column_stack([v, v])", "L.column_stack([m, m2])",
    "L.meshgrid(v, w, indexing='ij')", "L.meshgrid(v, w, indexing='xy')",
    "L.meshgrid([v, w, v], indexing='xy')", "L.meshgrid(s, w, indexing='ij')",
    "L.meshgrid(v, indexing='xy')",
]
ERRORS = [
    "L.hstack([])", "L.vstack(v)", "L.dstack([m, m2])", "L.column_stack([v, w])",
    "L.vstack([m, m2])", "L.meshgrid(v, w, indexing='foo')", "L.meshgrid(indexing='ij')",
    "L.meshgrid(v, iw, indexing='ij')", "L.result_type(2, 'a')",
]


def _env(lib):
    def leaf(a, **kw):
        return lib.tensor(a, requires_grad=True, **kw)
    return {"L": lib, "s": leaf(1.5), "v": leaf([1.0, 2.0, 3.0]), "w": leaf([4.0, 5.0]),
            "m": leaf([[1.0, 2.0], [3.0, 4.0]]), "m2": leaf([[5.0], [6.0]]),
            "iv": lib.tensor([1, 2, 3]), "iw": lib.tensor([1, 2])}


def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize("call", CALLS)
def test_results_and_gradients_match_pytorch(call):
    found = []
    for lib in (rg, torch):
        env = _env(lib)
        outs = _flat(eval(call, env))
        leaves = [t for t in env.values() if isinstance(t, (rg.Tensor, torch.Tensor))
                  and t.requires_grad]
        total = sum((o * lib.arange(1.0, o.numel() + 1).reshape(tuple(o.shape))).sum()
                    for o in outs if o.requires_grad)
        grads = lib.autograd.grad(total, leaves, allow_unused=True)
        found.append(([(tuple(o.shape), str(o.dtype), o.tolist(),
                        o.grad_fn.name() if o.grad_fn is not None else None) for o in outs],
                      [None if g is None else g.tolist() for g in grads]))
    assert found[0] == found[1]


@pytest.mark.parametrize("call", ERRORS)
def test_errors_match_pytorch(call):
    raises_as_torch(lambda lib: eval(call, _env(lib)), torch, rg)


def test_meshgrid_without_indexing_warns_and_means_ij():
    found = []
    for lib in (rg, torch):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            grids = lib.meshgrid(lib.arange(3), lib.arange(2))
        found.append(([g.tolist() for g in grids],
                      [str(w.message).split(" (Triggered internally")[0] for w in seen]))
    assert found[0] == found[1]


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def test_promote_types_and_can_cast_match_pytorch_for_every_pair():
    for a in DTYPES:
        for b in DTYPES:
            ra, rb, ta, tb = (getattr(rg, a), getattr(rg, b), getattr(torch, a),
                              getattr(torch, b))
            assert str(rg.promote_types(ra, rb)) == str(torch.promote_types(ta, tb)), (a, b)
            assert rg.can_cast(ra, rb) == torch.can_cast(ta, tb), (a, b)


@pytest.mark.parametrize("pair", [
    ("L.ones(2, dtype=L.int32)", "2.5"), ("2", "3"), ("2", "3.0"), ("True", "L.ones(1)"),
    ("L.tensor(1.0, dtype=L.float64)", "L.ones(2)"), ("L.ones(2, dtype=L.uint8)", "-1"),
    ("L.ones(2, dtype=L.int8)", "L.ones(2, dtype=L.uint8)"), ("L.ones(2, dtype=L.bool)", "1"),
])
def test_result_type_matches_pytorch(pair):
    found = []
    for lib in (rg, torch):
        a, b = (eval(p, {"L": lib}) for p in pair)
        found.append(str(lib.result_type(a, b)))
    assert found[0] == found[1]
