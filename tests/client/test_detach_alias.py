"""In-place changes through x.detach() (issue 12, found by the differential tester): the
alias shares x's data but not its history, so x takes the new value only (a leaf stays a
leaf with no grad_fn, a non-leaf keeps its grad_fn), the alias gets the op's history.
Each program runs under PyTorch and remotegrad: values, grad_fn names, is_leaf, _version
and gradients compared (remotegrad counted the op's contribution twice: 4 for PyTorch's 2)."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg
from tests.client.torchref import same_runs


def _name(t):
    return None if t.grad_fn is None else type(t.grad_fn).__name__


def _state(key, t):
    return [(key, t.detach().clone()), (key + ".grad_fn", _name(t)),
            (key + ".is_leaf", t.is_leaf), (key + ".version", t._version)]


def _leaf_copy(lib):
    x = lib.tensor(0.13, requires_grad=True)
    d = x.detach()
    d.copy_(x)
    return x, d, lambda: d.sum() + x.sum()


def _leaf_add(lib):
    x = lib.tensor([0.1, 0.2], requires_grad=True)
    e = x.detach()
    e.add_(x)
    return x, e, lambda: e.sum() + x.sum()


def _leaf_mul(lib):
    x = lib.tensor([0.1, 0.2], requires_grad=True)
    e = x.detach()
    e.mul_(x)
    return x, e, lambda: e.sum() + (x * x).sum()


def _leaf_by_other(lib):
    # the leaf's alias takes another leaf's history: x itself gets no gradient path
    x = lib.tensor([0.5, -1.0], requires_grad=True)
    w = lib.tensor([2.0, 3.0], requires_grad=True)
    e = x.detach()
    e.add_(w * 2)
    return x, e, lambda: (e * x).sum() + (x * 3).sum()


def _nonleaf_add(lib):
    a = lib.tensor([0.3, 0.7], requires_grad=True)
    y = a * 2
    e = y.detach()
    e.add_(a)
    return a, e, lambda: e.sum() + y.sum()


def _nonleaf_copy(lib):
    a = lib.tensor([0.3, 0.7, -0.2], requires_grad=True)
    y = a * a  # (exp would save y, and PyTorch refuses y changed since)
    e = y.detach()
    e.copy_(a * 3)
    return a, e, lambda: (e * e).sum() + (y * 2).sum()


def _view_of_detach(lib):
    x = lib.tensor([[0.1, 0.2], [0.3, 0.4]], requires_grad=True)
    d = x.detach()
    v = d[0]
    v.add_(x[1])
    return x, v, lambda: v.sum() + d.sum() + x.sum()


def _detach_of_view(lib):
    x = lib.tensor([[0.1, 0.2], [0.3, 0.4]], requires_grad=True)
    y = x * 1.5
    d = y[1].detach()
    d.mul_(x[0])
    return x, d, lambda: d.sum() + y.sum()


def _two_changes(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    d.add_(x)
    d.add_(x * 2)  # (x * x, mul_(x): PyTorch refuses x, saved there and changed since)
    return x, d, lambda: d.sum() + x.sum()


def _plain_root(lib):
    # a root that does not require grad stays so; the alias alone has the op's history
    x = lib.tensor([1.0, 2.0])
    w = lib.tensor([0.5, 0.25], requires_grad=True)
    d = x.detach()
    d.add_(w)
    return w, d, lambda: (d + x * w).sum()


def _view_of_root(lib):
    # a view of the leaf follows the change through the detach (AsStridedBackward0)
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = x[1:]
    d = x.detach()
    d.add_(x)
    return x, v, lambda: (v * 2).sum() + d.sum()


PROGRAMS = [_view_of_root, _leaf_copy, _leaf_add, _leaf_mul, _leaf_by_other, _nonleaf_add,
            _nonleaf_copy, _view_of_detach, _detach_of_view, _two_changes, _plain_root]


def _run(lib, program):
    wrt, alias, loss = program(lib)
    out = _state("wrt", wrt) + _state("alias", alias)
    (g,) = lib.autograd.grad(loss(), wrt)
    out.append(("grad", g))
    wrt2, _, loss2 = program(lib)
    loss2().backward()
    out.append(("backward.grad", wrt2.grad))
    return out


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__.strip("_"))
def test_detach_alias_in_place_matches_pytorch(program):
    same_runs(_run(rg, program), _run(torch, program), rtol=1e-5, atol=1e-6)
