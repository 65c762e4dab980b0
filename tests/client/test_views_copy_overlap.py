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


INDEX_PUT = {
    "into an expanded temporary": [
        "x = T.zeros(3).expand(2, 3)", "x.index_put_((T.tensor([0]),), T.ones(3))", "?x"],
    "into an expanded tensor, through its base": [
        "b = T.zeros(3)", "x = b.expand(2, 3)", "x[T.tensor([1])] = T.arange(3.)", "?b",
        "?x", "x.index_put_((T.tensor([0, 1]), T.tensor([1, 2])), T.tensor([5., 7.]))",
        "?b", "x[x > 1] = 0.5", "?b", "?x"],
    "a mask into an expanded view with grad": [
        "v0 = T.tensor(0.13, requires_grad=True)", "v1 = v0.clone()",
        "v2 = v1.expand(2, *v1.shape)", "v2[v2 > 0] = 0.5", "?v1", "?v2",
        "?T.autograd.grad(v2.sum(), v0)"],
}


@pytest.mark.filterwarnings("ignore:Use of index_put_ on expanded tensors")
@pytest.mark.parametrize("name", list(INDEX_PUT))
def test_index_put_into_an_expanded_tensor(name):
    """PyTorch's index_put_ into a tensor that repeats elements warns and writes each
    indexed element's memory (remotegrad refused with the overlap error)."""
    steps = INDEX_PUT[name]
    assert _run(rg, steps) == _run(torch, steps)
