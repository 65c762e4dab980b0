"""remotegrad's reshape/view/flatten/expand views do not share memory with the tensor
they view (client/_views.py): where PyTorch's answer depends on the sharing, remotegrad
refuses instead of answering differently; where it does not (the viewed tensor is gone,
the view is taken again after the change, writes through the tensor itself), the answers
are PyTorch's."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg
from remotegrad._views import ViewWriteError

SHARED = [  # PyTorch's result depends on the view sharing memory; reshape/expand views
    # do not write through (test_views_write_through.py has the chains that do): refused
    "c = b.clone(); c.view(3).mul_(2); out = c",
    "c = b.clone(); c.reshape(3, 1).zero_(); out = c",
    "c = b.clone(); c[1:].reshape(2, 1)[0].add_(1); out = c",
    "c = b.clone(); v = c.view(3, 1); c.mul_(2); out = v",
    "c = b.clone(); v = c.expand(2, 3); c.add_(1); out = v",
    "c = b.clone(); v = c.view(1, 3)[0, 1:]; c[0] = 5; out = v + 1",
]
SAME = [  # no sharing can show: PyTorch's answer
    "c = (b * 2)[1:]; c.add_(1); out = c",
    "c = b.clone(); v = c[1:]; c.mul_(2); v = c[1:]; out = v",
    "c = b.clone(); c[1:] = c[1:] + 1; out = c",
    "c = b.clone(); v = c[1:].clone(); v.add_(1); out = c + v.sum()",
    "c = b.clone(); v = c.view(3); c.zero_(); out = c",
    "c = b * a; v = c[1:]; out = v * 3",
]


def _run(lib, src):
    a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = lib.tensor([10.0, 20.0, 30.0])
    scope = {"a": a, "b": b}
    exec(src, scope)
    return scope["out"], a


@pytest.mark.parametrize("src", SHARED)
def test_a_change_pytorch_shares_through_a_view_is_refused(src):
    _run(torch, src)  # runs in PyTorch
    with pytest.raises(ViewWriteError, match="do not share memory"):
        out, _ = _run(rg, src)
        out.tolist()


@pytest.mark.parametrize("src", SAME)
def test_views_that_no_sharing_can_show_match_pytorch(src):
    want, ta = _run(torch, src)
    got, ra = _run(rg, src)
    assert got.tolist() == want.tolist()
    if want.requires_grad:
        want.sum().backward()
        got.sum().backward()
        assert ra.grad.tolist() == ta.grad.tolist()


def test_the_refusal_changes_nothing():
    c = rg.tensor([10.0, 20.0, 30.0])
    v = c.view(3)[1:]
    with pytest.raises(ViewWriteError):
        v.add_(1)
    assert c.tolist() == [10.0, 20.0, 30.0] and v.tolist() == [20.0, 30.0]
    assert c._version == 0 and v._version == 0


def test_the_refusal_is_a_not_implemented_error():
    assert issubclass(ViewWriteError, NotImplementedError)
