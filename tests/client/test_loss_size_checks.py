"""PyTorch's F.binary_cross_entropy(_with_logits) compare the input's and target's sizes in
Python before any op runs (issue 12, found by the differential tester): the size ValueError
comes ahead of the refusal of a modified no_grad view and of a weight that requires grad."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg

LOSSES = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]


def _error(T, loss, weight_grad=False):
    x = T.tensor([0.2, 0.4, 0.6], requires_grad=True)
    with T.no_grad():
        v = x.narrow(0, 0, 2)  # a no_grad view of a leaf that requires grad...
        v.mul_(2.0)  # ...changed in place: its history is refused
    t = T.tensor([0.3, 0.7, 0.1]).sigmoid()  # and the target's size differs
    w = T.ones(2, requires_grad=weight_grad)
    try:
        getattr(T.nn.functional, loss)(v, t, weight=w if weight_grad else None)
    except Exception as e:  # noqa: BLE001  (compared with PyTorch's)
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize("weight_grad", [False, True])
@pytest.mark.parametrize("loss", LOSSES)
def test_size_checked_before_op(loss, weight_grad):
    expected = _error(torch, loss, weight_grad)
    assert expected[0] == "ValueError"
    assert _error(rg, loss, weight_grad) == expected


def _refused_view(T):
    x = T.tensor([0.2, 0.4, 0.6], requires_grad=True)
    with T.no_grad():
        v = x.narrow(0, 0, 2)
        v.mul_(2.0)
    return v


CHECKED_IN_PYTHON = [
    # F.binary_cross_entropy's torch.broadcast_shapes of the weight, with its message
    "F.binary_cross_entropy(v, T.ones(2), weight=T.ones(3))",
    "F.binary_cross_entropy(v, T.ones(2), weight=T.ones(2, 3))",
    # cross_entropy's dtype check of class probabilities, before its log_softmax
    "F.cross_entropy(v, T.tensor([0, 1]))",
    "F.cross_entropy(v, T.tensor([True, False]))",
]


def _outcome(T, code):
    env = {"T": T, "F": T.nn.functional, "v": _refused_view(T)}
    try:
        exec(code, env)
    except Exception as e:  # noqa: BLE001  (compared with PyTorch's)
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize("code", CHECKED_IN_PYTHON)
def test_checked_before_the_view_refusal(code):
    assert _outcome(rg, code) == _outcome(torch, code)


def test_weight_broadcast_message_without_views():
    code = "F.binary_cross_entropy(T.ones(2) / 2, T.ones(2), weight=T.ones(3))"
    expected = _outcome(torch, code)
    assert expected[0] == "RuntimeError"
    assert _outcome(rg, code) == expected
