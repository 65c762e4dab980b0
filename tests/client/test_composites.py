"""The ops composed on the client in _composites (diff, roll, movedim/moveaxis, trace, addmm,
diag, diagonal, tile, masked_select, take_along_dim, frac, sgn, nan_to_num, cross, kron,
tensordot, cumprod, fmax, fmin, count_nonzero, tril/triu_indices) against PyTorch: values,
dtypes, grad_fn names, gradients, second order, forms (method, in place only where PyTorch
has one) and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import raises_as_torch

CALLS = [
    "torch.diff(x)", "x.diff(n=2, dim=0)", "x.diff(dim=0, prepend=torch.zeros(1, 4))",
    "x.diff(n=5)", "x.diff(dim=1, append=torch.ones(3, 2, dtype=torch.float64))",
    "torch.tensor([True, False, True]).diff()", "torch.tensor([1, 3, 7]).diff()",
    "x.roll(1)", "x.roll(1, 0)", "x.roll((1, -2), (0, 1))", "torch.roll(x, shifts=2, dims=1)",
    "torch.roll(torch.tensor(3.), 1)", "x.roll(1, dims=(0,))", "x.roll(4, 1)", "x.roll(-5)",
    "x.movedim(0, 1)", "torch.movedim(x, (0, 1), (1, 0))", "x.moveaxis(-1, 0)",
    "torch.tensor(2.).movedim(0, -1)", "torch.tensor(2.).movedim((-1,), (0,))",
    "torch.ones(2, 3, 4).movedim(0, -1)", "torch.ones(2, 3, 4).movedim((2, 0), (0, 1))",
    "x.trace()", "torch.trace(torch.ones(2, 3, dtype=torch.int32))", "x[:, :3].trace()",
    "torch.addmm(torch.ones(3), torch.ones(3, 3) * 2, x[:, :3], beta=0.5, alpha=2)",
    "torch.ones(3, 4).addmm(x[:, :2], x[:2], beta=0)",
    "torch.addmm(torch.tensor([float('nan'), 1, 2, 3]), x, torch.ones(4, 4), beta=0)",
    "torch.addmm(torch.ones(2, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64), "
    "torch.ones(3, 2, dtype=torch.int64), beta=2.7, alpha=1.9)",
    "torch.diag(v)", "torch.diag(v, 1)", "torch.diag(v, -2)", "torch.diag(x)",
    "torch.diag(x, -1)", "torch.diag(x, 5)", "v.diag()", "x.diag(diagonal=1)",
    "x.diagonal()", "x.diagonal(1)", "torch.diagonal(x, offset=-2)",
    "torch.ones(2, 3, 4).diagonal(0, 1, 2)", "torch.ones(2, 3, 4).diagonal(1, 2, 0)",
    "x.diagonal(7)", "x.diagonal(dim1=1, dim2=0)",
    "x.tile(2)", "x.tile((2, 1, 2))", "torch.tile(v, (2,))", "x.tile(())",
    "x.masked_select(x > 5)", "torch.masked_select(x, torch.tensor([True, False, True, False]))",
    "v.masked_select(torch.tensor([[True], [False]]))",
    "torch.take_along_dim(x, torch.tensor([[0], [2], [1]]), 1)",
    "torch.take_along_dim(x, torch.tensor([5, 0]))",
    "torch.take_along_dim(x, torch.tensor([[0, 1]]), 1)",
    "x.take_along_dim(torch.tensor([[2, 0, 1, 1]]), 0)",
    "x.frac()", "(x / 3).frac()",
    "torch.tensor([-1.5, -0.0, 2.5, float('inf'), float('nan')]).frac()",
    "torch.sgn(torch.tensor([-2, 0, 3]))", "torch.sgn(torch.tensor([True, False]))",
    "torch.tril_indices(3, 4)", "torch.triu_indices(3, 3, 1)",
    "torch.tril_indices(3, 3, -1, dtype=torch.int32)", "torch.triu_indices(0, 0)",
    "torch.triu_indices(4, 2, -1)",
    "s.nan_to_num()", "torch.nan_to_num(s, nan=2.0, posinf=1e10, neginf=-5)",
    "s.double().nan_to_num()", "s.half().nan_to_num()", "torch.tensor([1, 2]).nan_to_num()",
    "torch.nan_to_num(s, 1.0, 2.0, 3.0)",
    "torch.cross(a, b, dim=1)", "a.cross(b, 1)", "torch.cross(a, b[:1], dim=1)",
    "torch.cross(a, b, dim=-1)",
    "torch.tensordot(a, c, dims=0)", "torch.tensordot(a, c, dims=L_one)",
    "torch.tensordot(a, c, dims=[[1], [0]])", "torch.tensordot(a, c, 1)",
    "torch.tensordot(a, c.t(), dims=([0, 1], [0, 1]))",
    "torch.tensordot(a, c, dims=([0, 1], [1, 0]))",
    "torch.tensordot(a, c, dims=([-1], [0]))", "torch.tensordot(a, c, dims=([0], [1]))",
    "torch.fmax(p, q)", "torch.fmin(p, q)", "p.fmax(q)", "q.fmin(p)",
    "torch.fmax(p, torch.tensor(2.))", "torch.fmax(torch.tensor([1, 5]), torch.tensor([2., 3.]))",
    "torch.count_nonzero(x)", "x.count_nonzero(0)", "x.count_nonzero(dim=(0, 1))",
    "torch.count_nonzero(torch.tensor([True, False]))", "x.count_nonzero(dim=[1])",
    "torch.count_nonzero(s)",
    "torch.kron(a, torch.ones(2))", "torch.kron(torch.tensor(2.), a)",
    "torch.kron(a, torch.ones(2, dtype=torch.int64))", "a.kron(c)", "torch.kron(v, v)",
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
    "torch.diag(torch.ones(2, 2, 2))", "torch.diag(torch.tensor(1.))", "x.diagonal(0, 0, 0)",
    "torch.diagonal(torch.ones(3), 0)", "x.tile((-1,))", "x.masked_select(torch.ones(3, 4))",
    "x.masked_select(torch.ones(2, 4).bool())",
    "x.take_along_dim(torch.tensor([[0, 1, 2]]), dim=0)",
    "torch.take_along_dim(x, torch.tensor([[0.]]), 1)",
    "torch.take_along_dim(x, torch.tensor([0, 1]), 1)", "torch.frac(torch.tensor([1, 2]))",
    "torch.tril_indices(-1, 3)", "torch.triu_indices(2, -3)",
    "torch.cross(torch.ones(2, 2), torch.ones(2, 2), dim=1)",
    "torch.cross(torch.ones(2, 3), torch.ones(3), dim=-1)",
    "torch.ones(4, 3).cross(torch.ones(4, 3), dim=0)",
    "torch.cross(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3), dim=1)",
    "torch.tensordot(a, c, dims=-1)", "torch.tensordot(a, c, dims=([1], [0, 1]))",
    "torch.tensordot(a, c, dims=3)", "torch.tensordot(a, c.double(), 1)",
    "torch.tensordot(a, c, dims=([1], [1]))",
    "torch.fmax(torch.ones(2), torch.ones(3))", "x.count_nonzero(2)",
]


def _x(lib):
    return lib.arange(12.0).reshape(3, 4).requires_grad_()


def _env(lib):
    inf, nan = float("inf"), float("nan")
    return {"torch": lib, "x": _x(lib), "v": lib.arange(3.0).requires_grad_(),
            "s": lib.tensor([1.0, nan, inf, -inf, -0.0], requires_grad=True),
            "a": lib.tensor([[1.0, 2, 3], [-1, 0.5, 2]], requires_grad=True),
            "b": lib.tensor([[0.5, -1, 2], [3, 1, -2]], requires_grad=True),
            "c": lib.tensor([[0.5, -1], [3, 1], [2, -2]], requires_grad=True),
            "L_one": lib.tensor(1),
            "p": lib.tensor([1.0, nan, 2.0, nan, 3.0, -0.0, 0.0], requires_grad=True),
            "q": lib.tensor([2.0, 1.0, nan, nan, 3.0, 0.0, -0.0], requires_grad=True)}


@pytest.mark.parametrize("call", CALLS)
def test_results_and_gradients_match_pytorch(call):
    found = []
    for lib in (rg, torch):
        env = _env(lib)
        r = eval(call, env)
        grad = None
        if r.requires_grad:
            w = lib.arange(1.0, r.numel() + 1).reshape(tuple(r.shape))
            leaves = [env[k] for k in ("x", "v", "s", "a", "b", "c", "p", "q")]
            grad = [g.tolist() for g in lib.autograd.grad(
                (r * w).sum(), leaves, allow_unused=True, materialize_grads=True)]
        found.append((list(r.shape), str(r.dtype),
                      r.grad_fn.name() if r.grad_fn is not None else None,
                      np.asarray(r.detach().numpy(), dtype=np.float64), grad))
    (ms, md, mn, mv, mg), (rs, rd, rn, rv, rgr) = found
    assert (ms, md, mn, mg) == (rs, rd, rn, rgr)
    np.testing.assert_array_equal(mv, rv)


@pytest.mark.parametrize("call", ERRORS)
def test_errors_match_pytorch(call):
    raises_as_torch(lambda lib: eval(call, _env(lib)), torch, rg)


@pytest.mark.parametrize("name", ["diff", "roll", "movedim", "moveaxis", "trace", "addmm",
                                  "diag", "diagonal", "tile", "masked_select",
                                  "take_along_dim", "frac", "sgn", "tril_indices",
                                  "triu_indices", "nan_to_num", "cross", "kron",
                                  "tensordot", "cumprod", "fmax", "fmin",
                                  "count_nonzero"])
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


SECOND_BACKWARD = [
    "x.nan_to_num()", "x.roll(1)", "x.sgn()", "x.reshape(1, 3).cross(x.reshape(1, 3), 1)",
    "x.masked_select(x > 1)", "x.diag()", "x.frac()", "x.diff()", "x.reshape(1, 3).diagonal()",
    "x.reshape(1, 3).trace()", "x.tile(2)", "x.take_along_dim(torch.tensor([0, 2]))",
    "torch.addmm(x.reshape(1, 3), x.reshape(3, 1), x.reshape(1, 3))", "x.reshape(1, 3).diag()",
    "torch.clamp(x, min=torch.ones(3))", "x.clamp_min(1.0)",
    "x.scatter_reduce(0, torch.tensor([0, 0, 1]), x * 2, 'mean')",
    "torch.kron(x, x)", "torch.tensordot(x, x, 1)", "x.movedim(0, 0)", "x.diff()",
    "torch.meshgrid(x, x, indexing='ij')[0]", "torch.hstack([x, x])", "x.cumprod(0)",
]


@pytest.mark.parametrize("call", SECOND_BACKWARD)
def test_a_second_backward_fails_exactly_where_pytorchs_does(call):
    """What PyTorch's node saves decides whether backward can run twice without
    retain_graph; the composites' nodes are named so that the same holds here."""
    found = []
    for lib in (rg, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = eval(call, {"torch": lib, "x": x}).sum()
        y.backward()
        try:
            y.backward()
            found.append("ok")
        except RuntimeError as e:
            found.append(str(e)[:50])
    assert found[0] == found[1]


@pytest.mark.parametrize("call", [
    "x.cumprod(1)", "torch.cumprod(x, 0)", "x.cumprod(dim=-1, dtype=torch.float64)",
    "torch.tensor([1, 2, 3], dtype=torch.int32).cumprod(0)",
    "torch.tensor([True, False]).cumprod(0)", "torch.tensor(3.).cumprod(0)",
    "torch.ones(0).cumprod(0)", "r.cumprod(0)", "r.double().cumprod(0)", "r.half().cumprod(0)",
])
def test_cumprod_values_are_pytorchs_and_gradients_to_rounding(call):
    """Values bit for bit (PyTorch's CPU kernel multiplies in order in float64 for float32,
    float32 for float16); gradients by the product rule, equal to PyTorch's to rounding."""
    found = []
    for lib in (rg, torch):
        x = lib.tensor([[1.5, -2.0, 0.0, 3.0], [0.5, 0.25, 4.0, -1.0]], requires_grad=True)
        r = lib.tensor(np.random.default_rng(0).uniform(0.9, 1.1, 200).astype(np.float32),
                       requires_grad=True)
        y = eval(call, {"torch": lib, "x": x, "r": r})
        grads = None
        if y.requires_grad:
            w = lib.arange(1.0, y.numel() + 1).reshape(tuple(y.shape))
            grads = [g.numpy() for g in lib.autograd.grad(
                (y * w).sum(), (x, r), allow_unused=True, materialize_grads=True)]
        found.append((str(y.dtype), y.grad_fn.name() if y.grad_fn else None,
                      y.detach().numpy(), grads))
    (md, mn, mv, mg), (rd, rn, rv, rgr) = found
    assert (md, mn) == (rd, rn)
    np.testing.assert_array_equal(mv, rv)
    if mg is not None:  # (float16 rounds each product of the gradient at 1e-3)
        tol = 5e-3 if md == "torch.float16" else 1e-6
        for m, g in zip(mg, rgr):
            np.testing.assert_allclose(m, g, rtol=tol, atol=tol)


def test_cumprod_in_place_and_errors_match_pytorch():
    found = []
    for lib in (rg, torch):
        y = lib.tensor([[1.5, -2.0], [0.5, 4.0]], requires_grad=True) * 1
        y.cumprod_(1)
        with pytest.raises(IndexError) as e:
            y.cumprod(2)
        found.append((y.tolist(), y.grad_fn.name(), str(e.value)))
    assert found[0] == found[1]
