"""Second-order gradients through an in-place op's saved result, and gradients of legacy
empty (shape (0,)) tensors through cat, compared with PyTorch (issue 12, differential
tester): values, None-ness, requires_grad and grad_fn names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg


def _name(t):
    return None if t.grad_fn is None else type(t.grad_fn).__name__


def _same(a, b) -> None:
    assert (a is None) == (b is None)
    if a is None:
        return
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)
    assert a.requires_grad == b.requires_grad


def _through_view(T, op: str, view: bool):
    """An in-place op (which saves its result) on a view of a clone, or on the clone;
    its first gradient with create_graph, then the second with respect to the tensor
    the op changed."""
    leaf = T.tensor([0.3, 0.5], requires_grad=True)
    v1 = leaf.clone()
    v2 = v1.unsqueeze(1) if view else v1
    getattr(v2, op + "_")()
    g, = T.autograd.grad(v2.sum(), leaf, create_graph=True)
    again = T.autograd.grad(g.sum(), v2, allow_unused=True)
    return g, again[0]


@pytest.mark.parametrize("op", ["tanh", "exp"])
def test_saved_result_in_place(op):
    g, second = _through_view(rg, op, view=False)
    tg, tsecond = _through_view(torch, op, view=False)
    _same(g, tg)
    _same(second, tsecond)


@pytest.mark.parametrize("op", ["tanh", "exp"])
def test_first_gradient_through_view(op):
    g, _ = _through_view(rg, op, view=True)
    tg, _ = _through_view(torch, op, view=True)
    _same(g, tg)


@pytest.mark.parametrize("op", ["tanh", "exp"])
def test_saved_result_through_view(op):
    """PyTorch's saved result is the view after the op (its regenerated grad_fn): the
    second-order graph reaches it, so a gradient with respect to the view is a tensor."""
    _, second = _through_view(rg, op, view=True)
    _, tsecond = _through_view(torch, op, view=True)
    _same(second, tsecond)


_EMPTY_PROGRAMS = {
    "cat3_t_tanh_": lambda T, v: T.cat([v, v, v]).t().tanh_(),
    "cat3_tanh_": lambda T, v: T.cat([v, v, v]).tanh_(),
    "cat3_tanh": lambda T, v: T.cat([v, v, v]).tanh(),
    "cat1_slice_tanh_": lambda T, v: T.cat([v])[:].tanh_(),
    "cat_mul": lambda T, v: T.cat([v, v]) * T.cat([v, v]),
}


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0)])
@pytest.mark.parametrize("name", sorted(_EMPTY_PROGRAMS))
def test_empty_through_cat(name, shape):
    """PyTorch's cat_tensors_backward gives each legacy empty input a fresh zeros({0}),
    which requires no grad, even where every input is one; other empty shapes keep the
    derivative's history."""
    def run(T):
        v0 = T.zeros(*shape, requires_grad=True)
        y = _EMPTY_PROGRAMS[name](T, v0)
        g, = T.autograd.grad(y.sum(), v0, create_graph=True)
        return g
    g, tg = run(rg), run(torch)
    _same(g, tg)
    assert _name(g) == _name(tg)


def test_empty_beside_nonempty():
    def run(T):
        v0 = T.zeros(0, requires_grad=True)
        w = T.ones(3, requires_grad=True)
        return T.autograd.grad((T.cat([v0, w]) ** 2).sum(), [v0, w], create_graph=True)
    for a, b in zip(run(rg), run(torch)):
        _same(a, b)
        assert _name(a) == _name(b)


def test_empty_backward_grad():
    def run(T):
        v0 = T.zeros(0, requires_grad=True)
        T.cat([v0, v0]).t().tanh().sum().backward()
        return v0.grad
    _same(run(rg), run(torch))


_CLONED = {
    "clone_tanh": lambda T, x: x.clone().tanh(),
    "clone_tanh_": lambda T, x: x.clone().tanh_(),
    "clone_exp_": lambda T, x: x.clone().exp_(),
    "clone_mul": lambda T, x: x.clone() * x,
}


@pytest.mark.parametrize("name", sorted(_CLONED))
def test_gradient_name_through_clone(name):
    """clone's backward passes the gradient on as it is: the op before names a
    create_graph gradient (was ToCopyBackward0, the cast's rule's same-dtype cast)."""
    def run(T):
        x = T.tensor([0.3, 0.5], requires_grad=True)
        g, = T.autograd.grad(_CLONED[name](T, x).sum(), x, create_graph=True)
        return g
    g, tg = run(rg), run(torch)
    _same(g, tg)
    assert _name(g) == _name(tg)
