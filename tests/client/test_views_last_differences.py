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
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_as_pytorch(name):
    steps = PROGRAMS[name]
    assert _run(rg, steps) == _run(torch, steps)
