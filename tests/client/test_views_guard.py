"""Changes that PyTorch shares between a reshape/view/flatten/expand view and the tensor
it views (client/_views.py, once refused here): the answers are PyTorch's, and so are the
ones that no sharing can show. ViewWriteError is left for a view that cannot follow a
change (its tensor changed and went before the view was refreshed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad._views import ViewWriteError

SHARED = [  # PyTorch's result depends on the view sharing memory
    "c = b.clone(); c.view(3).mul_(2); out = c",
    "c = b.clone(); c.reshape(3, 1).zero_(); out = c",
    "c = b.clone(); c[1:].reshape(2, 1)[0].add_(1); out = c",
    "c = b.clone(); v = c.view(3, 1); c.mul_(2); out = v",
    "c = b.clone(); v = c.expand(2, 3); c.add_(1); out = v",
    "c = b.clone(); v = c.view(1, 3)[0, 1:]; c[0] = 5; out = v + 1",
    "c = b * a; v = c.view(3, 1); v[1:].mul_(a[1:, None]); out = c * v.sum()",
    "c = b * a; v = c.unflatten(0, (3, 1)).flatten(); v.exp_(); out = c",
    "c = b * a; v = c[None].expand(2, 3); c[1:].add_(a[:2]); out = v",
]
SAME = [  # no sharing can show: PyTorch's answer
    "c = (b * 2)[1:]; c.add_(1); out = c",
    "c = b.clone(); v = c[1:]; c.mul_(2); v = c[1:]; out = v",
    "c = b.clone(); c[1:] = c[1:] + 1; out = c",
    "c = b.clone(); v = c[1:].clone(); v.add_(1); out = c + v.sum()",
    "c = b.clone(); v = c.view(3); c.zero_(); out = c",
    "c = b * a; v = c[1:]; out = v * 3",
    "c = (b * a)[None].expand(2, 3).reshape(6); c.add_(1); out = c",  # a copy
]


def _run(lib, src):
    a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = lib.tensor([10.0, 20.0, 30.0])
    scope = {"a": a, "b": b}
    exec(src, scope)
    return scope["out"], a, scope["c"]


@pytest.mark.parametrize("src", SHARED + SAME)
def test_views_share_their_tensors_elements_as_pytorchs(src):
    want, ta, tc = _run(torch, src)
    got, ra, rc = _run(rg, src)
    assert np.allclose(got.tolist(), want.tolist())
    assert (rc._version, type(rc.grad_fn).__name__) == (tc._version,
                                                       type(tc.grad_fn).__name__)
    if want.requires_grad:
        want.sum().backward()
        got.sum().backward()
        assert np.allclose(ra.grad.tolist(), ta.grad.tolist())


def test_the_refusal_is_a_not_implemented_error():
    assert issubclass(ViewWriteError, NotImplementedError)


@pytest.mark.parametrize("dims", [(5, 5), (-3, -3), (2, 2), (1, 1), (-1, 1)])
def test_flatten_checks_its_dims_before_it_returns_the_tensor_itself(dims):
    """flatten(d, d) is the tensor itself only for a dim in range: PyTorch's IndexError
    comes first (remotegrad returned x for flatten(5, 5) of a 2-d x)."""
    def run(lib):
        x = lib.zeros(2, 3)
        try:
            return x.flatten(*dims) is x
        except IndexError as e:
            return str(e)
    assert run(rg) == run(torch)
