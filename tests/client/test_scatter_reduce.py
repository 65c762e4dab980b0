"""scatter_reduce ('sum', 'mean', include_self either way) and scatter's reduce='add'
against PyTorch: values, both gradients and second order, integer means (rounded down),
in-place forms, grad_fn names, the deprecation warning (once), PyTorch's errors, and the
reductions that need a catalog op of their own refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad import _scatter_reduce

RNG = np.random.default_rng(5)

CASES = [  # self shape, dim, index (duplicates on purpose: they are what reduces)
    ((2, 3), 1, [[0, 1, 0], [1, 1, 0]]),
    ((4,), 0, [0, 0, 3, 0, 1]),
    ((3, 4), 0, [[0, 1, 2, 2], [2, 2, 0, 1]]),
    ((2, 3, 2), -1, [[[1, 1], [0, 0]], [[0, 1], [1, 1]]]),
    ((3, 2), 1, np.zeros((3, 0), dtype=np.int64)),
]


def _run(lib, shape, dim, index, reduce, include_self):
    index = np.asarray(index)
    x = lib.tensor(RNG_X[shape], requires_grad=True)
    src = lib.tensor(RNG_S[index.shape], requires_grad=True)
    y = x.scatter_reduce(dim, lib.tensor(index), src, reduce, include_self=include_self)
    w = lib.tensor(np.arange(1.0, y.numel() + 1).reshape(tuple(y.shape)))
    gx, gs = lib.autograd.grad(((y * y) * w).sum(), (x, src), create_graph=True)
    hx, hs = lib.autograd.grad((gx.sum() + gs.sum()), (x, src), allow_unused=True,
                               materialize_grads=True)
    return y.grad_fn.name(), [t.detach().numpy() for t in (y, gx, gs, hx, hs)]


RNG_X = {s: RNG.normal(size=s) for s, _, _ in CASES}
RNG_S = {np.asarray(i).shape: RNG.normal(size=np.asarray(i).shape) for _, _, i in CASES}


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("shape,dim,index", CASES)
def test_values_and_gradients_match_pytorch(shape, dim, index, reduce, include_self):
    (mine_name, mine), (ref_name, ref) = (
        _run(lib, shape, dim, index, reduce, include_self) for lib in (rg, torch))
    assert mine_name == ref_name == "ScatterReduceBackward0"
    for what, m, r in zip(("value", "grad self", "grad src", "2nd self", "2nd src"), mine, ref):
        np.testing.assert_allclose(m, r, rtol=1e-12, atol=1e-14, err_msg=what)


@pytest.mark.parametrize("include_self", [True, False])
def test_integer_mean_rounds_down_as_pytorch(include_self):
    out = []
    for lib in (rg, torch):
        x = lib.tensor([1, 2, 3, -7])
        y = x.scatter_reduce(0, lib.tensor([0, 0, 1, 3, 3]), lib.tensor([-4, -5, 7, 2, 0]),
                             "mean", include_self=include_self)
        out.append((str(y.dtype), y.tolist()))
    assert out[0] == out[1]


def test_in_place_forms_match_pytorch():
    out = []
    for lib in (rg, torch):
        a = lib.zeros(2, 4)
        a.scatter_(1, lib.tensor([[1, 1], [3, 0]]), 1.0, reduce="add")  # counts, one-hot style
        b = lib.ones(3)
        b.scatter_reduce_(0, lib.tensor([0, 0, 2]), lib.tensor([2.0, 3.0, 4.0]), "mean",
                          include_self=False)
        c = lib.ones(3, dtype=lib.int64).scatter(0, lib.tensor([0, 0, 1]), 2.5, reduce="add")
        out.append((a.tolist(), b.tolist(), c.tolist(), str(c.dtype)))
    assert out[0] == out[1]


def test_scatter_add_reduce_is_not_differentiable_as_in_pytorch():
    found = []
    for lib in (rg, torch):
        x = lib.ones(3, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = x.scatter(0, lib.tensor([0, 0, 1]), lib.ones(3), reduce="add")
        with pytest.raises(RuntimeError) as e:
            y.sum().backward()
        found.append((y.tolist(), str(e.value)))
    assert found[0] == found[1]


def test_the_deprecation_warning_comes_once(monkeypatch):
    monkeypatch.setattr(_scatter_reduce, "_warned", [])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            rg.ones(3).scatter(0, rg.tensor([0, 1]), rg.ones(2), reduce="add")
        rg.ones(3).scatter(0, rg.tensor([0, 1]), 1.0, reduce="add")  # a number: no warning
    messages = [str(w.message) for w in seen]
    assert messages == [_scatter_reduce._SRC_DEPRECATED]


ERRORS = [
    "x.scatter_reduce(0, i, s, 'foo')", "x.scatter_reduce(0, i, s, reduce=1)",
    "x.scatter_reduce(0, i, 5.0, 'sum')", "x.scatter_reduce(0, i.float(), s, 'sum')",
    "x.scatter_reduce(0, i, s.double(), 'sum')", "x.scatter(0, i, s, reduce='mean')",
    "x.scatter(0, i.float(), 1.0, reduce='add')", "x.scatter_reduce(0, i, s)",
]


@pytest.mark.parametrize("code", ERRORS)
@pytest.mark.filterwarnings("ignore:The reduce argument")
def test_errors_match_pytorch(code):
    def run(lib):
        eval(code, {"x": lib.ones(3), "i": lib.tensor([0, 0, 1]), "s": lib.ones(3)})
    with pytest.raises(Exception) as ref:
        run(torch)
    with pytest.raises(type(ref.value)) as mine:
        run(rg)
    if "missing" not in str(ref.value):  # (a missing argument: Python's own wording here)
        assert str(mine.value) == str(ref.value)


@pytest.mark.parametrize("code", ["x.scatter_reduce(0, i, s, 'prod')",
                                  "x.scatter_reduce(0, i, s, 'amax')",
                                  "x.scatter_reduce(0, i, s, 'amin')",
                                  "x.scatter(0, i, 2.0, reduce='multiply')"])
def test_reductions_without_a_catalog_op_are_refused_by_name(code):
    with pytest.raises(NotImplementedError, match="needs a catalog op"):
        eval(code, {"x": rg.ones(3), "i": rg.tensor([0, 0, 1]), "s": rg.ones(3)})
