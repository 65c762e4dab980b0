"""backward()'s graph order: one path is taken without walk's two passes (_autograd._path);
the order must be walk's on every graph, paths or not, and the implicit seed a fresh leaf
of ones each pass."""

import numpy as np

import remotegrad as rg
from remotegrad import _autograd
from remotegrad._function import walk


def _graphs():
    x = rg.tensor(np.linspace(-1.0, 1.0, 5), requires_grad=True)
    w = rg.tensor(2.0, requires_grad=True)
    yield ((x * 2) ** 3).sum()                      # a path, a constant operand
    yield (x.sin().exp() + 1.0).tanh().sum()        # a longer path
    yield (x * x).sum()                             # one function twice: not a path
    yield (x.sin() + x.cos()).sum()                 # branches and joins
    yield (x * w).sum()                             # two leaves
    yield x.sum()                                   # a path to the leaf at once
    v = x[1:3]
    v2 = v * 3
    yield v2.sum()                                  # through a view


def test_order_is_walks():
    rg.connect("local")
    for out in _graphs():
        assert _autograd._graph([out]) == walk([out.grad_fn])


def test_implicit_seeds_are_fresh_leaves_of_ones():
    rg.connect("local")
    a, b = (_autograd._seeds([t], [])[0][0] for t in list(_graphs())[:2])
    assert a is not b and a.op == "leaf" and a.value.tolist() == 1.0
    assert a.value.dtype == np.float64 and not a.value.flags.writeable


def test_gradients_still_pytorchs():
    import torch
    rg.connect("local")
    for lib in (rg, torch):
        x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        ((x * 2) ** 3).sum().backward()
        ((x * 2) ** 3).sum().backward()  # accumulates
        if lib is rg:
            mine = x.grad.numpy()
        else:
            assert np.array_equal(mine, x.grad.numpy())
