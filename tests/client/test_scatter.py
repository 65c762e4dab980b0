"""Tensor.scatter / scatter_ / torch.scatter against PyTorch: values for a src tensor and
for a value, both gradients (self's with the written positions zeroed, src's gathered),
second order, grad_fn names, the one-hot idiom in place, and PyTorch's errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg

RNG = np.random.default_rng(3)

CASES = [  # self shape, dim, index (unique positions: PyTorch leaves duplicates unspecified)
    ((3, 4), 1, [[0, 2], [3, 1], [1, 0]]),
    ((3, 4), 0, [[0, 1, 2], [2, 0, 1]]),
    ((3, 4), -1, [[3], [0]]),
    ((5,), 0, [4, 0, 2]),
    ((2, 3, 4), 2, [[[1, 3], [0, 2]], [[2, 1], [3, 0]]]),
    ((2, 3, 4), 1, [[[0, 2, 1, 0]], [[1, 0, 2, 2]]]),
    ((3, 4), 1, np.zeros((3, 0), dtype=np.int64)),
]


def _pair(array, requires_grad=False, dtype=None):
    return (rg.tensor(array, dtype=dtype, requires_grad=requires_grad),
            torch.tensor(array, dtype=getattr(torch, dtype.name) if dtype else None,
                         requires_grad=requires_grad))


@pytest.mark.parametrize("shape,dim,index", CASES)
def test_src_values_and_gradients_match_pytorch(shape, dim, index):
    index = np.asarray(index)
    xs = _pair(RNG.normal(size=shape), requires_grad=True)
    ss = _pair(RNG.normal(size=index.shape), requires_grad=True)
    weights = RNG.normal(size=shape)
    results = []
    for lib, x, s in ((rg, xs[0], ss[0]), (torch, xs[1], ss[1])):
        out = x.scatter(dim, lib.tensor(index), s)
        (out * lib.tensor(weights)).sum().backward()
        results.append((out.grad_fn.name(), out.detach().numpy(), x.grad.numpy(),
                        s.grad.numpy()))
    assert results[0][0] == results[1][0] == "ScatterBackward0"
    for mine, ref in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(mine, ref, rtol=1e-12)


@pytest.mark.parametrize("value", [1.5, 0, -2, True])
@pytest.mark.parametrize("shape,dim,index", CASES[:5])
def test_value_form_matches_pytorch(shape, dim, index, value):
    xs = _pair(RNG.normal(size=shape), requires_grad=True)
    results = []
    for lib, x in ((rg, xs[0]), (torch, xs[1])):
        out = x.scatter(dim, lib.tensor(index), value)
        out.sum().backward()
        by_keyword = lib.scatter(x.detach(), dim, lib.tensor(index), value=value)
        results.append((out.grad_fn.name(), out.detach().numpy(), x.grad.numpy(),
                        by_keyword.numpy()))
    assert results[0][0] == results[1][0] == "ScatterBackward1"
    for mine, ref in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(mine, ref, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_one_hot_in_place_as_the_transforms_tutorial(dtype):
    made = []
    for lib in (rg, torch):
        zeros = lib.zeros(10, dtype=getattr(lib, dtype))
        target = zeros.scatter_(0, lib.tensor(3), value=1)
        made.append((target is zeros, target.dtype == getattr(lib, dtype), target.tolist()))
    assert made[0] == made[1] and made[0][0]


def test_second_order_by_gradgradcheck():
    index = rg.tensor([[0, 2], [3, 1], [1, 0]])
    x = rg.tensor(RNG.normal(size=(3, 4)), requires_grad=True)
    s = rg.tensor(RNG.normal(size=(3, 2)), requires_grad=True)

    def f(x, s):
        return (x.scatter(1, index, s) ** 2).sum(0)
    assert rg.autograd.gradcheck(f, (x, s))
    assert rg.autograd.gradgradcheck(f, (x, s))


def _errors(lib):
    x, i = lib.zeros(3, 4), lib.tensor([[0, 1], [2, 0]])
    return {
        "src_dtype": lambda: x.scatter(1, i, lib.ones(2, 2, dtype=lib.float64)),
        "index_dtype": lambda: x.scatter(1, i.float(), lib.ones(2, 2)),
        # index values are checked when computed (remotegrad's are when first read)
        "index_bounds": lambda: x.scatter(1, lib.tensor([[5]]), lib.ones(1, 1)).tolist(),
        "negative_index": lambda: x.scatter(1, lib.tensor([[-1]]), 1.0).tolist(),
        "index_ndim": lambda: x.scatter(1, lib.tensor([0, 1]), 1.0),
        "index_larger_than_self": lambda: x.scatter(1, lib.zeros(4, 2, dtype=lib.int64), 1.0),
        "index_larger_than_src": lambda: x.scatter(1, i, lib.ones(1, 1)),
        "dim_range": lambda: x.scatter(2, i, 1.0),
        "leaf_in_place": lambda: lib.zeros(3, requires_grad=True).scatter_(
            0, lib.tensor([1]), 1.0),
    }


@pytest.mark.parametrize("name", sorted(_errors(torch)))
def test_errors_match_pytorch(name):
    outcomes = []
    for lib in (rg, torch):
        try:
            _errors(lib)[name]()
            outcomes.append(("ok", ""))
        except Exception as e:  # the (built-in) class and message are what is compared
            builtin = next(c for c in type(e).__mro__ if c.__module__ == "builtins")
            outcomes.append((builtin.__name__, str(e)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] != "ok"


def test_reduce_is_refused_clearly():  # reduce="add": tests/client/test_scatter_reduce.py
    with pytest.raises(NotImplementedError, match="reduce"):
        rg.zeros(3).scatter(0, rg.tensor([1]), rg.ones(1), reduce="multiply")
