"""x[key] = v with tensor indices is PyTorch's index_put_ (accumulate=False): the values
overwrite (a written -0.0 stays -0.0; a repeated index keeps one written value, not their
sum), x's grad_fn is IndexPutBackward0 (CopySlices when the key views x first), x's
gradient is the seed outside the written places and each value's the seed at its index
(a duplicate's too). index_put_(..., accumulate=True) adds. Issue 12: the written values
were scatter-added into zeros, so duplicates summed and -0.0 became 0.0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg


def _run(T, key_of, x0, v0, seed, write):
    """x (a leaf's clone) written by `write`; its values, grad_fn name and the gradients
    of (x * seed).sum() with respect to the leaf and the value."""
    leaf = T.tensor(x0, requires_grad=True)
    v = T.tensor(v0, requires_grad=True)
    x = leaf.clone()
    write(x, key_of(T), v)
    name = type(x.grad_fn).__name__
    g_leaf, g_v = T.autograd.grad((x * T.tensor(seed)).sum(), (leaf, v))
    return x.detach().numpy(), name, g_leaf.numpy(), g_v.numpy()


def _same(key_of, x0, v0, write=lambda x, k, v: x.__setitem__(k, v)):
    x0, v0 = np.asarray(x0, dtype=np.float64), np.asarray(v0, dtype=np.float64)
    seed = np.arange(1.0, x0.size + 1).reshape(x0.shape)
    got = _run(rg, key_of, x0, v0, seed, write)
    want = _run(torch, key_of, x0, v0, seed, write)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(np.signbit(got[0]), np.signbit(want[0]))
    assert got[1] == want[1]
    np.testing.assert_array_equal(got[2], want[2])
    np.testing.assert_array_equal(got[3], want[3])
    return want


def _idx(*parts):
    return lambda T: tuple(T.tensor(p) if isinstance(p, list) else p for p in parts)


def test_negative_zero_is_written_as_it_is():
    want = _same(_idx([0, 2]), np.zeros(3), [-0.0, -0.0])
    assert list(np.signbit(want[0])) == [True, False, True]


def test_a_repeated_index_takes_a_written_value_not_the_sum():
    """PyTorch's CPU loop writes in order, the last value stays (not documented, so the
    cases are ones PyTorch 2.13 gives so; its value gradient is the seed at every copy)."""
    want = _same(_idx([1, 1]), np.zeros(3), [2.0, 3.0])
    assert list(want[0]) == [0.0, 3.0, 0.0] and list(want[3]) == [2.0, 2.0]
    want = _same(_idx([1, 1, 3, 1]), np.ones(5), [2.0, 3.0, 4.0, 7.0])
    assert list(want[0]) == [1.0, 7.0, 1.0, 4.0, 1.0]


@pytest.mark.parametrize("key", [
    _idx([1, 0]), _idx(slice(None), [2, 0]), _idx(Ellipsis, [1]), _idx([0, 2], slice(None)),
    _idx([0, 1], [2, 2]), _idx(slice(0, 5), [1, 1]),   # IndexPutBackward0
    _idx(0, [1, 2]), _idx(slice(1, None), [0]), _idx(None, [1]),  # CopySlices
], ids=["rows", "cols", "ellipsis", "rows-slice", "pairs", "whole-slice-dup",
        "int-then", "slice-then", "none-then"])
def test_n_d_keys(key):
    x0 = np.arange(12.0).reshape(3, 4) - 5.0
    region = torch.zeros(3, 4)[key(torch)].shape
    v0 = -np.arange(1.0, 1 + int(np.prod(region))).reshape(tuple(region)) * 0.5
    _same(key, x0, v0)


def test_bool_masks():
    mask = [[True, False, True, False], [False, False, False, True], [True] * 4]
    _same(lambda T: T.tensor(mask), np.zeros((3, 4)), -np.arange(7.0) * 0.0 - np.arange(7.0))
    _same(lambda T: (T.tensor([True, False, True]),), np.ones((3, 4)), -np.zeros(4))


def test_a_number_and_a_broadcast_value():
    _same(_idx([2, 0, 2]), np.ones((3, 2)), [-0.0, 5.0])
    _same(_idx([1, 1]), np.ones(3), -0.0)


@pytest.mark.parametrize("trial", range(4))
def test_random_keys_with_duplicates(trial):
    gen = np.random.default_rng(trial)
    x0 = gen.normal(size=(4, 5))
    rows = gen.integers(-4, 4, size=6).tolist()
    cols = gen.integers(0, 5, size=6).tolist()
    v0 = np.where(gen.random(6) < 0.3, -0.0, gen.normal(size=6))
    _same(_idx(rows, cols), x0, v0)
    _same(_idx(rows[:3]), x0, gen.normal(size=(3, 5)))


def test_index_put_overwrites_and_accumulate_adds():
    put = lambda x, k, v: x.index_put_(k, v)  # noqa: E731
    add = lambda x, k, v: x.index_put_(k, v, accumulate=True)  # noqa: E731
    want = _same(_idx([1, 1, 0]), np.zeros(3), [2.0, 3.0, -0.0], put)
    assert list(want[0]) == [0.0, 3.0, 0.0] and np.signbit(want[0][0])
    want = _same(_idx([1, 1, 0]), np.ones(3), [2.0, 3.0, -0.5], add)
    assert list(want[0]) == [0.5, 6.0, 1.0] and list(want[2]) == [1.0, 2.0, 3.0]
    _same(_idx([0, 2], [1, 1]), np.ones((3, 2)), [4.0, 5.0], add)
    out = rg.zeros(3).index_put((rg.tensor([1, 1]),), rg.tensor([2.0, 3.0]), accumulate=True)
    assert out.tolist() == [0.0, 5.0, 0.0]
