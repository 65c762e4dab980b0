"""x ** 0 is ones, x ** 1 is x, x ** 2 and x ** 3 run as products (autodiff.materialize),
bit for bit what PyTorch's CPU kernel gives, special values and gradients included; other
powers stay `pow`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remotegrad.worker.engine import Graph, compile_graph

VALUES = [-2.0, -0.0, 0.0, 1.5, np.inf, -np.inf, np.nan, 3e30, 3.0, -7.25e-3]


def _program(dtype: str, exponent):
    g = Graph()
    x = g.add("leaf", (), {"hash": "x", "dtype": dtype, "shape": (len(VALUES),)})
    y = g.add("pow", (x, g.add("const", (), {"value": exponent})))
    seed = g.add("leaf", (), {"hash": "s", "dtype": dtype, "shape": (len(VALUES),)})
    dx = g.add("grad", (y, seed, x), {"n": 1})
    return compile_graph(g, [y, dx], np)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("exponent", [0, 1, 2, 3, 0.0, 1.0, 2.0, 3.0, 4, 2.5])
def test_power_matches_torch_bitwise(dtype, exponent):
    prog = _program(dtype, exponent)
    pows = prog.names.count("pow")  # 0: the gradient is zeros_like (PyTorch's rule); 4: its forward
    assert pows == {0: 0, 1: 0, 2: 0, 3: 0, 4: 1}.get(exponent, 2), prog.names
    x = np.array(VALUES, dtype)
    seed = np.random.default_rng(0).standard_normal(len(VALUES)).astype(dtype)
    by_leaf = {"x": x, "s": seed}
    y, dx = prog.run([by_leaf[h] for h in prog.leaf_hashes])
    tx = torch.tensor(x, requires_grad=True)
    ty = tx ** exponent
    (tdx,) = torch.autograd.grad(ty, tx, torch.tensor(seed))
    want = ty.detach().numpy()
    assert np.array_equal(y, want, equal_nan=True)
    assert np.array_equal(np.signbit(y), np.signbit(want))
    if exponent in (0, 1, 2, 3):  # the gradient's x ** (y - 1) is a product too
        np.testing.assert_array_equal(dx, tdx.numpy())
    else:
        np.testing.assert_allclose(dx, tdx.numpy(), rtol=1e-6 if dtype == "float64" else 1e-5)


def test_a_gradients_power_is_the_forwards():
    """x ** 4 + x ** 5: the gradient's x ** (5 - 1) folds to the forward's x ** 4 (two pows
    run, not three), with PyTorch's values."""
    g = Graph()
    x = g.add("leaf", (), {"hash": "x", "dtype": "float64", "shape": (5,)})
    y = g.add("add", (g.add("pow", (x, g.add("const", (), {"value": 4}))),
                      g.add("pow", (x, g.add("const", (), {"value": 5})))))
    seed = g.add("leaf", (), {"hash": "s", "dtype": "float64", "shape": (5,)})
    prog = compile_graph(g, [y, g.add("grad", (y, seed, x), {"n": 1})], np)
    assert prog.names.count("pow") == 2, prog.names
    v = np.array([-1.5, -0.0, 0.5, 2.0, 3.25])
    by_leaf = {"x": v, "s": np.ones(5)}
    _, dx = prog.run([by_leaf[h] for h in prog.leaf_hashes])
    tx = torch.tensor(v, requires_grad=True)
    (want,) = torch.autograd.grad((tx ** 4 + tx ** 5).sum(), tx)
    np.testing.assert_allclose(dx, want.numpy(), rtol=1e-15)
