"""smooth_l1_loss, huber_loss and kl_div (functional and modules), composed on the client
from catalog ops, against PyTorch: values, grad_fn names, gradients, warnings, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(3)
# differences on both sides of every bound used below, exact zeros and a broadcast target
X = R.standard_normal((4, 5)) * 2
T = R.standard_normal((4, 5))
T[0, :2] = X[0, :2]
P = R.random((4, 5))
P[1, 1] = 0.0
LOGP = np.log(R.random((4, 5)) + 0.1)


def _run(lib, call, x, t, *, target_grad=False, dtype="float64"):
    xi = lib.tensor(x.astype(dtype), requires_grad=True)
    ti = lib.tensor(t.astype(dtype), requires_grad=target_grad)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = call(lib, xi, ti)
    name = type(out.grad_fn).__name__
    out.backward(lib.ones_like(out))
    return out, name, xi.grad, ti.grad, [str(w.message) for w in seen]


def _compare(call, x, t, *, target_grad=False, dtype="float64", tol=1e-12):
    ours = _run(rg, call, x, t, target_grad=target_grad, dtype=dtype)
    theirs = _run(torch, call, x, t, target_grad=target_grad, dtype=dtype)
    close(ours[0], theirs[0], rtol=tol, atol=tol, what="value")
    assert ours[1] == theirs[1], "grad_fn name"
    close(ours[2], theirs[2], rtol=tol, atol=tol, what="input grad")
    if target_grad:
        close(ours[3], theirs[3], rtol=tol, atol=tol, what="target grad")
    assert ours[4] == theirs[4], "warnings"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_smooth_l1_loss(reduction, beta):
    def call(lib, x, t):
        return lib.nn.functional.smooth_l1_loss(x, t, reduction=reduction, beta=beta)
    _compare(call, X, T, target_grad=True)
    _compare(lambda lib, x, t: lib.nn.SmoothL1Loss(reduction=reduction, beta=beta)(x, t),
             X, T[0], dtype="float32", tol=1e-5)  # a broadcast target warns


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_loss(reduction, delta):
    def call(lib, x, t):
        return lib.nn.functional.huber_loss(x, t, reduction=reduction, delta=delta)
    _compare(call, X, T, target_grad=True)
    _compare(lambda lib, x, t: lib.nn.HuberLoss(reduction=reduction, delta=delta)(x, t),
             X, T, dtype="float32", tol=1e-5)
    w = np.abs(T) + 0.5

    def weighted(lib, x, t):
        return lib.nn.functional.huber_loss(x, t, reduction=reduction, delta=delta,
                                            weight=lib.tensor(w))
    _compare(weighted, X, T)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = np.log(R.random((4, 5)) + 0.05)
    t = LOGP if log_target else P  # P holds a 0: xlogy's 0 * log 0 = 0

    def call(lib, x, t):
        return lib.nn.functional.kl_div(x, t, reduction=reduction, log_target=log_target)
    _compare(call, x, t)
    # the target gradient of a probability target is not compared: at a 0 target PyTorch's
    # is NaN (xlogy's rule), this one -input
    _compare(call, x, t, target_grad=log_target)
    module = lambda lib, x, t: lib.nn.KLDivLoss(reduction=reduction,  # noqa: E731
                                                log_target=log_target)(x, t)
    _compare(module, x, t, dtype="float32", tol=1e-5)


def test_kl_div_of_a_0d_input_and_legacy_arguments():
    for kwargs in ({"reduction": "batchmean"}, {"size_average": False}, {"reduce": False}):
        _compare(lambda lib, x, t, kw=kwargs: lib.nn.functional.kl_div(x, t, **kw),
                 np.array(-0.7), np.array(0.4))


def test_modules_repr_and_state():
    for name, kwargs in (("SmoothL1Loss", {"beta": 0.5}), ("HuberLoss", {"delta": 2.0}),
                         ("KLDivLoss", {"reduction": "batchmean", "log_target": True})):
        ours, theirs = getattr(rg.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        assert repr(ours) == repr(theirs)
        assert ours.reduction == theirs.reduction
        assert list(ours.state_dict()) == list(theirs.state_dict()) == []


ERRORS = [
    lambda F, x, t: F.smooth_l1_loss(x, t, beta=-1.0),
    lambda F, x, t: F.smooth_l1_loss(x, t, reduction="batchmean"),
    lambda F, x, t: F.smooth_l1_loss(x, t[0, :3]),
    lambda F, x, t: F.huber_loss(x, t, delta=0.0),
    lambda F, x, t: F.huber_loss(x, t, reduction="avg"),
    lambda F, x, t: F.huber_loss(x, t, weight=t[0]),
    lambda F, x, t: F.kl_div(x, t, reduction="bad"),
    lambda F, x, t: F.smooth_l1_loss(x.long(), t.long()),
    lambda F, x, t: F.huber_loss(x.int(), t.int()),
    lambda F, x, t: F.smooth_l1_loss(x > 0, t > 0),
    lambda F, x, t: F.kl_div(x, t.long()),
]


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_errors_match(index):
    def error(lib):
        x, t = lib.tensor(X), lib.tensor(T)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(Exception) as info:
                ERRORS[index](lib.nn.functional, x, t)
        return type(info.value).__name__, str(info.value)
    assert error(rg) == error(torch)


def test_gradients_of_gradients_match():
    # the composed form is differentiable again (PyTorch's fused kernels are too)
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        loss = lib.nn.functional.smooth_l1_loss(x, lib.tensor(T), beta=0.7) + \
            lib.nn.functional.huber_loss(x, lib.tensor(T), delta=0.4, reduction="sum")
        (g,) = lib.autograd.grad(loss, x, create_graph=True)
        (g * g).sum().backward()
        return g, x.grad
    for a, b in zip(run(rg), run(torch)):
        close(a, b, rtol=1e-12, atol=1e-12)
