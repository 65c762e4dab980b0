"""The last view-related differences the differential tester's view programs found (issue
12): create_graph gradients through in-place changes of views and of their bases (their
grad_fn, requires_grad and values), and index_put_ into an expanded tensor. Each program
runs under PyTorch and remotegrad (the repr shows the values, grad_fn and requires_grad)."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg

from test_refused_views import _run

X0 = "v0 = T.tensor(0.13, requires_grad=True)"

PROGRAMS = {
    # pow's rule guards y == 0 with a where under clone's cast: the name was WhereBackward0
    "clone().pow_(2), create_graph": [
        X0, "v1 = v0.clone()", "v1.pow_(2)",
        "?T.autograd.grad(v1.sum(), v0, create_graph=True)[0]"],
    "view(-1) of a root changed by pow_, create_graph": [
        X0, "v1 = v0.clone()", "v2 = v1.view(-1)", "v1.pow_(2)",
        "?T.autograd.grad(v2.sum(), v0, create_graph=True)[0]"],
    # PyTorch's as_strided_backward of an empty view returns constant zeros of the base
    "empty regenerated view, create_graph": [
        X0, "v1 = T.tensor([0.13], requires_grad=True)", "v2 = v1.clone()", "v3 = v2.t()",
        "v3.clamp_(min=-0.5)", "v4 = v3[1:]", "v4 -= v0", "v5 = T.exp(v4)",
        "gs = T.autograd.grad(v5.sum(), [v0, v1, v5], create_graph=True, "
        "materialize_grads=True)", "?gs[0]", "?gs[1]", "?gs[2]", "?gs[0].is_leaf",
        "?T.autograd.grad(v5.sum(), [v0, v1], allow_unused=True)[0]"],
    "empty view regenerated after its base changed": [
        X0, "x = T.ones(1, 2, requires_grad=True)", "c = x.clone()", "w = c[1:]",
        "c.mul_(v0)", "?w.grad_fn", "gs = T.autograd.grad(T.exp(w).sum(), [x, v0, c], "
        "create_graph=True)", "?gs[0]", "?gs[1]", "?gs[2]",
        "?T.autograd.grad((w * 2).sum() + c.sum(), c, create_graph=True)[0]"],
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_as_pytorch(name):
    steps = PROGRAMS[name]
    assert _run(rg, steps) == _run(torch, steps)
