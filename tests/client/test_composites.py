"""diff, roll, movedim/moveaxis, trace and addmm (composed on the client) against PyTorch:
values, dtypes, grad_fn names, gradients, second order, forms (method, in place only where
PyTorch has one) and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg

CALLS = [
    "torch.diff(x)", "x.diff(n=2, dim=0)", "x.diff(dim=0, prepend=torch.zeros(1, 4))",
    "x.diff(n=5)", "x.diff(dim=1, append=torch.ones(3, 2, dtype=torch.float64))",
    "torch.tensor([True, False, True]).diff()", "torch.tensor([1, 3, 7]).diff()",
    "x.roll(1)", "x.roll(1, 0)", "x.roll((1, -2), (0, 1))", "torch.roll(x, shifts=2, dims=1)",
    "torch.roll(torch.tensor(3.), 1)", "x.roll(1, dims=(0,))", "x.roll(4, 1)", "x.roll(-5)",
    "x.movedim(0, 1)", "torch.movedim(x, (0, 1), (1, 0))", "x.moveaxis(-1, 0)",
    "torch.ones(2, 3, 4).movedim(0, -1)", "torch.ones(2, 3, 4).movedim((2, 0), (0, 1))",
    "x.trace()", "torch.trace(torch.ones(2, 3, dtype=torch.int32))", "x[:, :3].trace()",
    "torch.addmm(torch.ones(3), torch.ones(3, 3) * 2, x[:, :3], beta=0.5, alpha=2)",
    "torch.ones(3, 4).addmm(x[:, :2], x[:2], beta=0)",
    "torch.addmm(torch.tensor([float('nan'), 1, 2, 3]), x, torch.ones(4, 4), beta=0)",
    "torch.addmm(torch.ones(2, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64), "
    "torch.ones(3, 2, dtype=torch.int64), beta=2.7, alpha=1.9)",
]
ERRORS = [
    "x.diff(n=-1)", "torch.diff(torch.tensor(1.))", "x.diff(append=torch.zeros(4))",
    "x.roll(1, 2)", "x.roll((1, 2), 0)", "x.roll([])", "x.roll((1, 1))",
    "x.movedim(0, 2)", "x.movedim((0, 0), (1, 0))", "x.movedim((0,), (1, 0))",
    "torch.trace(torch.ones(3))", "torch.trace(torch.ones(3, 2, dtype=torch.bool))",
    "torch.addmm(torch.ones(2), torch.ones(2, 3), torch.ones(3, 2).double())",
    "torch.addmm(torch.ones(2), torch.ones(2, 3).double(), torch.ones(3, 2))",
    "torch.addmm(torch.ones(3), torch.ones(2, 3), torch.ones(2, 2))",
    "torch.addmm(torch.ones(3), torch.ones(2, 3), torch.ones(3, 2))",
    "torch.addmm(torch.ones(2), torch.ones(3), torch.ones(3, 2))",
    "torch.addmm(torch.ones(2), torch.ones(2, 3), torch.ones(3))",
]


def _x(lib):
    return lib.arange(12.0).reshape(3, 4).requires_grad_()


@pytest.mark.parametrize("call", CALLS)
def test_results_and_gradients_match_pytorch(call):
    found = []
    for lib in (rg, torch):
        x = _x(lib)
        r = eval(call, {"torch": lib, "x": x})
        grad = None
        if r.requires_grad:
            w = lib.arange(1.0, r.numel() + 1).reshape(tuple(r.shape))
            (grad,) = lib.autograd.grad((r * w).sum(), x, allow_unused=True,
                                        materialize_grads=True)
            grad = grad.tolist()
        found.append((list(r.shape), str(r.dtype),
                      r.grad_fn.name() if r.grad_fn is not None else None,
                      np.asarray(r.detach().numpy(), dtype=np.float64), grad))
    (ms, md, mn, mv, mg), (rs, rd, rn, rv, rgr) = found
    assert (ms, md, mn, mg) == (rs, rd, rn, rgr)
    np.testing.assert_array_equal(mv, rv)


@pytest.mark.parametrize("call", ERRORS)
def test_errors_match_pytorch(call):
    with pytest.raises(Exception) as ref:
        eval(call, {"torch": torch, "x": _x(torch)})
    with pytest.raises(type(ref.value)) as mine:
        eval(call, {"torch": rg, "x": _x(rg)})
    assert str(mine.value) == str(ref.value)


@pytest.mark.parametrize("name", ["diff", "roll", "movedim", "moveaxis", "trace", "addmm"])
def test_forms_are_pytorchs(name):
    for form in (name, f"{name}_"):
        assert hasattr(rg.Tensor, form) == hasattr(torch.Tensor, form), form
    assert hasattr(rg, name) == hasattr(torch, name)


def test_second_order_matches_pytorch():
    found = []
    for lib in (rg, torch):
        a = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=lib.float64,
                       requires_grad=True)
        b = lib.tensor(np.linspace(0.5, 2, 6).reshape(3, 2), dtype=lib.float64,
                       requires_grad=True)
        y = lib.addmm(lib.ones(2, dtype=lib.float64), a, b, beta=0.5, alpha=1.5)
        z = (y.roll(1, 0).diff(dim=1) ** 2).sum() + (a @ b).trace() ** 2
        (ga,) = lib.autograd.grad(z, a, create_graph=True)
        (hb,) = lib.autograd.grad(ga.sum(), b)
        found.append((ga.detach().numpy(), hb.numpy()))
    for m, r in zip(*found):
        np.testing.assert_allclose(m, r, rtol=1e-12)


def test_addmm_in_place_matches_pytorch():
    found = []
    for lib in (rg, torch):
        m = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        acc = lib.ones(2, 2) * 1.0
        acc.addmm_(m, m.t(), beta=0.5)
        acc.sum().backward()
        found.append((acc.tolist(), acc.grad_fn.name(), m.grad.tolist()))
    assert found[0] == found[1]
