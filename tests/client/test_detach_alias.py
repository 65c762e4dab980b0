"""In-place changes through x.detach() (issue 12, found by the differential tester): the
alias shares x's data but not its history, so x takes the new value only (a leaf stays a
leaf with no grad_fn, a non-leaf keeps its grad_fn), the alias gets the op's history.
Each program runs under PyTorch and remotegrad: values, grad_fn names, is_leaf, _version
and gradients compared (remotegrad counted the op's contribution twice: 4 for PyTorch's 2)."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg
from tests.client.torchref import raises_as_torch, same_runs


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


def _leaf_view_detach(lib):
    # x[0].detach() is a view of x's storage without history: x takes the change, stays a
    # leaf, and its gradient sees the new values
    x = lib.tensor([[0.1, 0.2], [0.3, 0.4]], requires_grad=True)
    d = x[0].detach()
    d.add_(1)
    return x, d, lambda: (x * x).sum() + d.sum()


def _view_detach_with_history(lib):
    # the detached view takes another leaf's history; its root keeps its own (MulBackward0)
    w = lib.tensor([2.0, 3.0], requires_grad=True)
    x = lib.tensor([[0.1, 0.2], [0.3, 0.4]], requires_grad=True)
    y = x * 1.5
    d = y[1].detach()
    d.mul_(w)
    return w, d, lambda: (d * d).sum() + (y * w).sum()


def _root_change_reaches_detached_view(lib):
    x = lib.tensor([[0.1, 0.2], [0.3, 0.4]], requires_grad=True)
    y = x * 2
    d = y.t()[1].detach()
    y.mul_(3)
    return x, d, lambda: (d * x[0]).sum() + y.sum()


def _view_of_detached_view(lib):
    w = lib.tensor([0.5], requires_grad=True)
    x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = x + 0
    d = y[1:].detach()
    e = d[1:2]
    e.add_(w)
    return w, e, lambda: (e * 2).sum() + (y * w).sum() + d.sum()


def _detached_split_piece(lib):
    # a piece of split has PyTorch's multiple-views refusal; its detach has none
    w = lib.tensor([0.5, 0.25], requires_grad=True)
    x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = x * 1
    d = y.split(2)[1].detach()
    d.add_(w)
    return w, d, lambda: (d * w).sum() + (y * 2).sum()


def _no_grad_zero(lib):
    # the alias changed under no_grad: alias and leaf hold the same new value, two inputs
    # still (found by the differential tester, --ops views --seed 31: lerp(e, x, w) gave
    # x the gradient 1, both operands' share, where PyTorch's is w)
    x = lib.tensor([[0.13], [-0.13]], requires_grad=True)
    w = lib.tensor(0.13, requires_grad=True)
    e = x.detach()
    with lib.no_grad():
        e.zero_()
    return x, e, lambda: lib.lerp(e, x, w).sum()


def _no_grad_add_product(lib):
    x = lib.tensor([0.1, 0.2], requires_grad=True)
    e = x.detach()
    with lib.no_grad():
        e.add_(1)
    return x, e, lambda: (e * x).sum()


def _copied_then_required(lib):
    # copy_ of a tensor that requires no grad handed over its node: the copy and its
    # source were one input to the engine (x.grad was 2x, PyTorch's y)
    y = lib.tensor([0.5, 2.0])
    x = lib.zeros(2)
    x.copy_(y)
    x.requires_grad_()
    return x, y, lambda: (x * y).sum()


def _copied_under_no_grad(lib):
    # ... and a change of the source through a view then reached the copy's gradient
    # (found by the differential tester, --ops views-second --seed 31)
    a = lib.tensor([0.5, 2.0])
    b = lib.zeros(2, requires_grad=True)
    with lib.no_grad():
        b.copy_(a)
    c = a.view(2)
    c.mul_(3)
    return b, a, lambda: (b * 1 + a).sum()


def _data_then_required(lib):
    # x.data = y (and x.set_(y)) handed over y's node the same way
    y = lib.tensor([0.5, 2.0])
    x = lib.zeros(2)
    x.data = y
    x.requires_grad_()
    return x, y, lambda: (x * y).sum()


def _set_then_required(lib):
    y = lib.tensor([0.5, 2.0])
    x = lib.zeros(2)
    x.set_(y)
    x.requires_grad_()
    return x, y, lambda: (x * y).sum()


PROGRAMS = [_data_then_required, _copied_then_required, _copied_under_no_grad, _no_grad_zero,
            _no_grad_add_product, _leaf_view_detach, _view_detach_with_history,
            _root_change_reaches_detached_view, _view_of_detached_view,
            _detached_split_piece, _view_of_root, _leaf_copy, _leaf_add, _leaf_mul,
            _leaf_by_other, _nonleaf_add, _nonleaf_copy, _view_of_detach, _detach_of_view,
            _two_changes, _plain_root]


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


def _shared_both_ways(lib):
    c = lib.zeros(2, 3)
    c[0].detach().add_(1)  # the temporary view and its detach are gone: c keeps the change
    out = [("c", c.clone()), ("c.version", c._version)]
    v = c.t()[1]
    d = v.detach()
    c.mul_(2)
    out += [("d", d.clone()), ("d.version", d._version), ("v.version", v._version)]
    d.sub_(5)
    out += [("c2", c.clone()), ("v", v.clone()), ("c.version2", c._version),
            ("d.stride", d.stride()), ("d.offset", d.storage_offset()),
            ("d.contiguous", d.is_contiguous())]
    x = lib.tensor([[0.13, 0.5]], requires_grad=True)
    x.detach()[0].add_(1)  # a view of a temporary detach reaches x
    c = lib.zeros(2, 3)
    c[0].detach()[1:].add_(1)
    out += [("x", x.detach().clone()), ("x.version", x._version), ("c3", c.clone())]
    c = lib.zeros(2, 3)
    d = c.t()[1].detach()
    e = d[1:]
    e.mul_(0).add_(7)  # a view of a detached view writes through both
    out += [("c4", c.clone()), ("d4", d.clone()), ("e", e.clone()),
            ("versions", (c._version, d._version, e._version))]
    return out


def test_detach_of_a_view_shares_its_storage_as_pytorchs():
    same_runs(_shared_both_ways(rg), _shared_both_ways(torch), rtol=0, atol=0)


def _expanded_detach(lib):
    x = lib.tensor(0.5)
    x.expand(2).detach().div_(lib.tensor(2.0))


def _leaf_diagonal(lib):
    lib.tensor([[0.13]], requires_grad=True).diagonal().sigmoid_()


def _leaf_select(lib):
    lib.tensor([[0.13, 0.2]], requires_grad=True)[0].add_(1)


def _leaf_t(lib):
    lib.tensor([[0.13, 0.2]], requires_grad=True).t().mul_(2)


def _leaf_select_bad_shape(lib):
    # PyTorch's autograd refuses before the kernel checks the shapes
    lib.tensor([[0.13]], requires_grad=True)[0].add_(lib.ones(3))


def _leaf_expand(lib):
    lib.tensor(0.5, requires_grad=True).expand(2).add_(1)


def _leaf_view_copy(lib):
    lib.tensor([[0.13, 0.2]], requires_grad=True)[:, 1:].copy_(lib.tensor([1.0]))


@pytest.mark.parametrize("run", [_expanded_detach, _leaf_diagonal, _leaf_select, _leaf_t,
                                 _leaf_select_bad_shape, _leaf_expand, _leaf_view_copy],
                         ids=lambda p: p.__name__.strip("_"))
def test_refusals_match_pytorch(run):
    raises_as_torch(run, torch, rg)


def test_set_then_required_gets_its_own_gradient():
    """x.set_(y) handed over y's node (x.grad was 2x); the version counter after set_ is
    another matter (PyTorch's is 1, remotegrad's 0), not compared here."""
    grads = []
    for lib in (rg, torch):
        x, _, loss = _set_then_required(lib)
        loss().backward()
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1]
