"""Graphs are freed by reference counting alone, as PyTorch's are: no reference cycle keeps a
read's walk or backward's gradients (and the arrays they hold) alive until Python's
garbage collector runs. The collector is off in these tests, so a cycle would show."""

from __future__ import annotations

import gc
import weakref

import pytest

import remotegrad as rg


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_read_keeps_no_node_it_walked(no_gc):
    a = rg.tensor([1.0, 2.0])
    y = a * 2
    z = y + 1
    assert z.tolist() == [3.0, 5.0]
    node = weakref.ref(y._node)
    del y
    assert node() is None


def test_unread_gradients_go_with_their_tensors(no_gc):
    w1 = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w2 = rg.tensor([4.0, 5.0, 6.0], requires_grad=True)
    (w1 * w2).sum().backward()
    grads = [weakref.ref(w1.grad._node), weakref.ref(w2.grad._node)]
    w1.grad = w2.grad = None  # what zero_grad does, the gradients never read
    assert [g() for g in grads] == [None, None]


def test_a_single_gradient_goes_too(no_gc):
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    grad = weakref.ref(w.grad._node)
    w.grad = None
    assert grad() is None


def test_gradients_still_come_back_together(requests):
    w1 = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w2 = rg.tensor([4.0, 5.0, 6.0], requires_grad=True)
    w3 = rg.tensor([7.0, 8.0, 9.0], requires_grad=True)
    (w1 * w2 * w3).sum().backward()
    w3.grad = None  # a sibling dropped before the read is not needed
    assert w1.grad.tolist() == [28.0, 40.0, 54.0]
    assert len(requests) == 1
    assert w2.grad.tolist() == [7.0, 16.0, 27.0]
    assert len(requests) == 1  # computed with w1's
