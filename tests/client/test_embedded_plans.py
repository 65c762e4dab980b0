"""The embedded mode finds a planned structure without building the graph: the key the
client computes in its walk (_request.by_structure) is the engine's own structure key of
the graph by_identity would send, with the leaves' arrays in the order the plan takes
them; a repeated training step is one key, and its values are PyTorch's."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad import _request, _session
from remotegrad.worker import engine

pytestmark = pytest.mark.skipif(_session.current().address != "local",
                                reason="the embedded mode's own path")


def _pending(lib, seed: int = 0):
    """Nodes of one MLP step (the loss, and the gradients and updated parameters pending)."""
    rng = np.random.default_rng(seed)
    w = lib.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    b = lib.zeros(5, dtype=lib.float64, requires_grad=True)
    x = lib.tensor(rng.standard_normal((3, 4)))
    loss = (lib.nn.functional.linear(x, w, b).tanh() ** 3).sum() + 0.5
    loss.backward()
    with lib.no_grad():
        w -= 0.1 * w.grad
        b.mul_(0.9)
    return [loss, w, b, w.grad, b.grad]


def test_key_is_the_engines_structure_key():
    nodes = [t._node for t in _pending(rg)]
    key, arrays = _request.by_structure(nodes)
    wire, targets, leaves = _request.by_identity(nodes)
    want, names = engine.structure(wire, targets)
    assert key == want
    assert names == [str(k) for k in range(len(arrays))]
    assert len(arrays) == len(leaves) and all(a is b for a, b in zip(arrays, leaves))


def test_a_repeated_step_is_one_key_with_pytorchs_values():
    keys = {_request.by_structure([t._node for t in _pending(rg, s)])[0] for s in range(3)}
    assert len(keys) == 1 and None not in keys
    for s in range(3):
        mine, theirs = _pending(rg, s), _pending(torch, s)
        for a, b in zip(mine, theirs):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


def test_other_values_of_an_attribute_are_another_structure():
    x = rg.tensor(np.arange(6.0).reshape(2, 3))
    k0 = _request.by_structure([x.sum(dim=0)._node])[0]
    k1 = _request.by_structure([x.sum(dim=1)._node])[0]
    kz = _request.by_structure([(x * 0.0)._node])[0]
    kn = _request.by_structure([(x * -0.0)._node])[0]
    assert k0 != k1 and kz != kn
    np.testing.assert_array_equal((x * -0.0).numpy(), torch.arange(6.0).reshape(2, 3) * -0.0)
    np.testing.assert_array_equal(np.signbit((x * -0.0).numpy()), [[True] * 3] * 2)


def test_a_refused_op_raises_every_time_as_pytorch_and_a_found_one_keeps_its_attributes():
    x, tx = rg.ones(2, 3), torch.ones(2, 3)
    with pytest.raises(IndexError) as want:
        tx.sum(dim=5)
    for _ in range(2):  # the catalog's verdicts are remembered; refusals are not
        with pytest.raises(IndexError) as got:
            x.sum(dim=5)
        assert str(got.value) == str(want.value)
    for order in ({"min": np.float64(0.0), "max": 2.0}, {"max": 2.0, "min": np.float64(-0.0)}):
        y = x.clamp(**order)
        assert y._node.attrs == {"min": order["min"], "max": 2.0}
        assert np.signbit(y._node.attrs["min"]) == np.signbit(order["min"])
        np.testing.assert_array_equal(y.numpy(), tx.clamp(**order).numpy())


# A chain of n sin()s has its non-leaf nodes 0 .. n - 1 deep: DEPTH + 1 of them is the
# deepest graph by_structure recurses through, DEPTH + 2 the shallowest it walks with its
# own stack. (A backward() graph of n ops is deeper than n: both sides there fall back.)
@pytest.mark.parametrize("ops", [_request.DEPTH + 1, _request.DEPTH + 2, 3 * _request.DEPTH])
def test_a_deep_graph_keys_as_a_shallow_one(ops):
    """by_structure recurses down to DEPTH and walks a deeper graph with its own stack:
    either way the engine's key and its leaves' order, and PyTorch's values (of the chain
    and of its gradient)."""
    def chain(lib):
        x = lib.tensor(np.linspace(0.1, 0.2, 3), requires_grad=True)
        y = x
        for _ in range(ops):
            y = y.sin()
        return x, y
    (x, y), (tx, ty) = chain(rg), chain(torch)
    y.sum().backward()
    ty.sum().backward()
    for t in (y, x.grad):
        nodes = [t._node]
        key, arrays = _request.by_structure(nodes)
        wire, targets, leaves = _request.by_identity(nodes)
        assert key == engine.structure(wire, targets)[0]
        assert len(arrays) == len(leaves) and all(a is b for a, b in zip(arrays, leaves))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


def test_a_caller_deep_in_the_stack_gets_the_key_not_a_recursion_error():
    """by_structure called where fewer frames than DEPTH are left below Python's limit
    walks with its own stack, as for a deeper graph."""
    x = rg.tensor(np.linspace(0.1, 0.2, 3), requires_grad=True)
    y = x
    for _ in range(_request.DEPTH - 10):
        y = y.sin()
    nodes = [y._node]
    want = _request.by_structure(nodes)[0]

    def deep(n):  # each level one frame, down to 200 frames above the limit
        return deep(n - 1) if n else _request.by_structure(nodes)[0]
    frames = len(inspect.stack(0))
    assert deep(sys.getrecursionlimit() - frames - 200) == want
