"""Loss options as PyTorch has them: pos_weight of binary_cross_entropy_with_logits and
BCEWithLogitsLoss (values, gradients of every operand, grad_fn, buffers), the grad_fn that
label smoothing leaves, and PyTorch's ValueError for a reduction it does not know."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

import remotegrad as rg

RNG = np.random.default_rng(7)


def _outcome(call):
    try:
        call()
        return ("ok", "")
    except Exception as e:  # the class and message are what is compared
        return (type(e).__name__, str(e))


def _both(*arrays, grad=()):
    ours = [rg.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    return ours, theirs


POS_WEIGHT_CASES = [  # input shape, pos_weight shape, weight shape or None
    ((4,), (1,), None), ((3, 5), (5,), None), ((3, 5), (5,), (3, 5)), ((2, 3, 4), (4,), (1, 4)),
    ((2, 3), (2, 3), (3,)), ((6,), (), None),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape,pw_shape,w_shape", POS_WEIGHT_CASES)
def test_pos_weight_values_and_gradients(shape, pw_shape, w_shape, reduction):
    arrays = [RNG.normal(size=shape) * 3, RNG.uniform(size=shape),
              RNG.uniform(0.5, 4.0, size=pw_shape)]
    if w_shape is not None:
        arrays.append(RNG.uniform(0.2, 2.0, size=w_shape))
    grad = (0, 1)  # PyTorch differentiates neither weight nor pos_weight
    ours, theirs = _both(*arrays, grad=grad)
    results = []
    for lib, (x, t, pw, *w) in ((rg, ours), (torch, theirs)):
        loss = lib.nn.functional.binary_cross_entropy_with_logits(
            x, t, w[0] if w else None, reduction=reduction, pos_weight=pw)
        loss.sum().backward()
        results.append((loss, [x.grad, t.grad], loss.grad_fn.name()))
    (mine, my_grads, my_name), (ref, ref_grads, ref_name) = results
    assert my_name == ref_name
    np.testing.assert_allclose(mine.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    for g, h in zip(my_grads, ref_grads):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-6, atol=1e-12)


def test_pos_weight_module_matches_and_keeps_buffers():
    x, t = RNG.normal(size=(4, 3)), RNG.uniform(size=(4, 3)).round()
    pw, w = np.array([3.0, 0.5, 2.0]), np.array([1.0, 2.0, 0.5])
    outs = []
    for lib in (rg, torch):
        crit = lib.nn.BCEWithLogitsLoss(weight=lib.tensor(w), pos_weight=lib.tensor(pw))
        loss = crit(lib.tensor(x, requires_grad=True), lib.tensor(t))
        outs.append((repr(crit), sorted(crit.state_dict()), loss.item(),
                     [name for name, _ in crit.named_buffers()]))
    assert outs[0][:2] == outs[1][:2] and outs[0][3] == outs[1][3]
    assert outs[0][2] == pytest.approx(outs[1][2], rel=1e-12)
    assert not isinstance(rg.nn.BCEWithLogitsLoss(), rg.nn.BCELoss)  # as PyTorch's classes


@pytest.mark.parametrize("which", ["weight", "pos_weight"])
def test_a_weight_that_requires_grad_fails_as_in_pytorch(which):
    outcomes = []
    for lib in (rg, torch):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        call = partial(lib.nn.functional.binary_cross_entropy_with_logits, x,
                       x.detach().sigmoid(), **{which: w})
        outcomes.append(_outcome(call))
        with lib.no_grad():  # the check is the autograd's: without it the loss is computed
            outcomes.append(_outcome(call))
    assert outcomes[0] == outcomes[2] and outcomes[0][0] == "RuntimeError"
    assert outcomes[1] == outcomes[3] == ("ok", "")


def test_pos_weight_that_does_not_fit_the_input_fails_as_in_pytorch():
    ours, theirs = _both(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 2)))
    mine = _outcome(lambda: rg.nn.functional.binary_cross_entropy_with_logits(
        ours[0], ours[1], pos_weight=ours[2]))
    ref = _outcome(lambda: torch.nn.functional.binary_cross_entropy_with_logits(
        theirs[0], theirs[1], pos_weight=theirs[2]))
    assert mine[0] == ref[0] == "RuntimeError"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(3, 4), (4,), (2, 4, 3)])
def test_label_smoothing_ends_in_an_add_as_in_pytorch(shape, reduction):
    x = RNG.normal(size=shape)
    target = RNG.integers(0, 4, size=shape[:1] + shape[2:] if len(shape) > 1 else ())
    results = []
    for lib in (rg, torch):
        logits = lib.tensor(x, requires_grad=True)
        loss = lib.nn.CrossEntropyLoss(label_smoothing=0.2, reduction=reduction)(
            logits, lib.tensor(target))
        loss.sum().backward()
        results.append((loss.grad_fn.name(), loss.detach().numpy(), logits.grad.numpy()))
    assert results[0][0] == results[1][0] == "AddBackward0"
    for mine, ref in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(mine, ref, rtol=1e-6, atol=1e-12)


def _loss_calls(lib):
    F = lib.nn.functional
    x, t = lib.tensor([0.2, 0.7, 0.4]), lib.tensor([0.0, 1.0, 1.0])
    c, y = lib.tensor([[0.1, 0.5, 0.2], [0.3, 0.2, 0.1]]), lib.tensor([0, 2])
    short = lib.tensor([0.5, 0.5])
    return {
        "mse_loss": lambda r: F.mse_loss(x, t, reduction=r),
        "l1_loss": lambda r: F.l1_loss(x, t, reduction=r),
        "bce": lambda r: F.binary_cross_entropy(x, t, reduction=r),
        "bce_logits": lambda r: F.binary_cross_entropy_with_logits(x, t, reduction=r),
        "nll_loss": lambda r: F.nll_loss(c, y, reduction=r),
        "cross_entropy": lambda r: F.cross_entropy(c, y, reduction=r),
        "smooth_l1_loss": lambda r: F.smooth_l1_loss(x, t, reduction=r),
        "huber_loss": lambda r: F.huber_loss(x, t, reduction=r),
        "kl_div": lambda r: F.kl_div(x, t, reduction=r),
        # shapes that do not broadcast fail before the reduction is read, as in PyTorch
        "mse_loss_bad_shape": lambda r: F.mse_loss(x, short, reduction=r),
        "l1_loss_bad_shape": lambda r: F.l1_loss(x, short, reduction=r),
        "bce_bad_shape": lambda r: F.binary_cross_entropy(x, short, reduction=r),
        "smooth_l1_bad_shape": lambda r: F.smooth_l1_loss(x, short, reduction=r),
        "huber_bad_shape": lambda r: F.huber_loss(x, short, reduction=r),
        "nll_bad_batch": lambda r: F.nll_loss(c, lib.tensor([0, 1, 2]), reduction=r),
        "module_at_forward": lambda r: lib.nn.MSELoss(reduction=r)(x, t),
        "ce_module_at_forward": lambda r: lib.nn.CrossEntropyLoss(reduction=r)(c, y),
    }


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("reduction", ["avg", "total", "Mean", ""])
@pytest.mark.parametrize("case", sorted(_loss_calls(torch)))
def test_an_unknown_reduction_fails_as_in_pytorch(case, reduction):
    mine = _outcome(lambda: _loss_calls(rg)[case](reduction))
    ref = _outcome(lambda: _loss_calls(torch)[case](reduction))
    assert mine == ref
    assert ref[0] != "ok"


def test_a_loss_module_with_an_unknown_reduction_constructs_as_in_pytorch():
    assert rg.nn.MSELoss(reduction="avg").reduction == torch.nn.MSELoss(reduction="avg").reduction
