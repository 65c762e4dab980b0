"""In-place writes through views that PyTorch's overlap checks let through (issue 12,
found by the differential tester's view programs): a fill_ with a 0-d tensor reads its
number first (no overlap check with it), setitem copies a value of the region's own sizes
as it is and expands any other (its strides count), and a copy_ of a tensor's own elements
in its own order is allowed into an expanded tensor (PyTorch's copy_ writes nothing; the
gradient through it is still refused). Each program runs under PyTorch and remotegrad."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg

from test_refused_views import _run

PROGRAMS = {
    "0-d root's flatten takes the root": [
        "a = T.tensor(0.13)", "c = a.flatten()", "c[...] = a", "?a", "c.fill_(a * 3)",
        "?a", "c.fill_(a)", "c[0] = a", "?c", "c.copy_(a)", "c.add_(a)"],
    "same strides, same elements": [
        "a = T.ones(1, 3)", "c = a[:, None]", "b = a.unsqueeze(0)", "c[...] = b * 2",
        "c[...] = b", "?a", "c.add_(b)", "?a", "d = a.view(3, 1).t()", "?d.stride()",
        "a.copy_(d)", "a[...] = d", "a.add_(d)"],
    "expanded tensor takes its own elements": [
        "v0 = T.tensor([0.13, -0.13, 0.64, 0.1])", "v1 = v0.expand(2, *v0.shape)",
        "v1[...] = v0", "?v1._version", "v1.copy_(v0)", "v1.copy_(v0.expand(2, 4))",
        "v1[...] = v0.expand(2, 4)", "v1[0] = v0", "v1[...] = v0 * 2", "?v0"],
    "gradient through an expanded copy of itself": [
        "x = T.tensor([0.13, -0.13], requires_grad=True)", "y = x.clone()",
        "e = y.expand(2, 2)", "e[...] = y", "?y.grad_fn", "?e.grad_fn",
        "?T.autograd.grad(e.sum(), x)"],
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_overlap_as_pytorch(name):
    steps = PROGRAMS[name]
    assert _run(rg, steps) == _run(torch, steps)


@pytest.mark.parametrize("dims", [(1, 1), (0, 1), (-2, 0), (1, 0), (0, -1), (-1, -1), (0, 0)])
def test_flatten_of_a_0d_tensor_checks_its_dims(dims):
    """A 0-d tensor's dims are -1 and 0 (zeros(()).flatten(1, 1) returned a (1,) tensor
    where PyTorch raises IndexError)."""
    steps = [f"?T.zeros(()).flatten{dims}", f"?T.flatten(T.zeros(()), {dims[0]})"]
    assert _run(rg, steps) == _run(torch, steps)
