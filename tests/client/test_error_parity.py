"""Shape/dtype rules and value checks the differential tester found apart from PyTorch:
the same exception class (the builtin a PyTorch user catches) and first line, or the same
result dtype and shape, for each expression run under both libraries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import remotegrad as rg


def _run(lib, code: str):
    env = {"t": lib, "F": lib.nn.functional, "inf": float("inf"), "nan": float("nan")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = eval(code, env)  # noqa: S307  (our own table)
            if isinstance(out, tuple):
                return ("ok", tuple((str(o.dtype).split(".")[-1], tuple(o.shape))
                                    for o in out), [o.tolist() for o in out])
            return ("ok", (str(out.dtype).split(".")[-1], tuple(out.shape)), out.tolist())
        except Exception as e:  # noqa: BLE001
            cls = next(c for c in type(e).__mro__ if c.__module__ == "builtins")
            return ("raised", cls, str(e).splitlines()[0] if str(e) else "")


B = "t.tensor([True, False])"
L = "t.tensor([1, 2])"
RAISES = [
    # bool/integer kernels PyTorch lacks
    f"t.relu({B})", f"F.relu({B})", f"t.abs({B})", f"{B} ** {B}", f"F.elu({B})", f"F.elu({L})",
    f"F.leaky_relu({L})", f"F.gelu({B})", f"F.silu({L})", f"F.softplus({B})",
    f"t.lerp({B}, {B}, 0.5)", f"t.lerp({L}, {L}, 0.5)", f"t.lerp({L}, {L}, {L})",
    f"t.addcmul({B}, {B}, {B})", f"t.addcdiv({L}, {L}, {L})", f"t.addcdiv({B}, {B}, {B})",
    f"t.matmul({B}, {B})", "t.ones(1, 2, dtype=t.bool) @ t.ones(2, 1, dtype=t.bool)",
    "t.ones(3, 2, dtype=t.bool) @ t.ones(2, dtype=t.bool)",
    "t.ones(2, 3, 2, dtype=t.bool) @ t.ones(2, 2, 1, dtype=t.bool)",
    f"F.binary_cross_entropy({B}, {B})", f"F.binary_cross_entropy(t.tensor([.5, .2]), {B})",
    "F.binary_cross_entropy(t.tensor([1, 0]), t.tensor([1., 0.]))", f"F.relu6({B})",
    f"F.binary_cross_entropy_with_logits({L}, t.tensor([1., 0.]))",
    f"F.binary_cross_entropy_with_logits(t.tensor([1., 0.]), {L})",
    f"F.mse_loss({L}, {L})", f"F.l1_loss({L}, {L})", f"F.log_softmax({L}, 0)",
    f"F.cross_entropy({L}[None], t.tensor([0]))",
    f"{L} ** -1", f"t.pow({L}, -2)",
    # classes: ValueError / IndexError where PyTorch raises them
    "F.binary_cross_entropy(t.tensor([.5, .2]), t.tensor([1., 0., 1.]))",
    "F.binary_cross_entropy_with_logits(t.tensor([.5, .2]), t.tensor([[1., 0.]]))",
    "F.nll_loss(t.zeros(3, 4), t.tensor([1, 2]))",
    "F.cross_entropy(t.zeros(3, 4), t.tensor([1, 2]))",
    "F.nll_loss(t.zeros(2, 4, 5), t.zeros(2, 4, dtype=t.long))",
    "F.cross_entropy(t.zeros(3, 4), t.zeros(3, 5))",
    "F.cross_entropy(t.zeros(3, 4), t.zeros(3, 4, dtype=t.long))",
    "F.nll_loss(t.zeros(()), t.tensor(1))", "F.nll_loss(t.zeros(()), t.tensor([1]))",
    "F.cross_entropy(t.zeros(()), t.tensor(1))", "F.cross_entropy(t.zeros(()), t.tensor([1]))",
    "F.cross_entropy(t.zeros(()), t.tensor(0.5))",
    "t.arange(4.)[::-1]", "t.zeros(2, 3)[:, ::-2]", "t.arange(4.)[::0]",
    "t.zeros(0).argmax()", "t.zeros(0, 3).argmin()", "t.zeros(0, 3).argmax(0)",
    "t.zeros(0, 3).amax(0)", "t.zeros(0).amin(0)", "t.zeros(0).max(0)", "t.zeros(0).max()",
    "t.zeros(2, 3).amax(2)", "t.zeros(2, 3).logsumexp(2)", "t.zeros(2, 3).argmax(-3)",
    "t.zeros(4).chunk(2, 1)", "t.zeros(()).chunk(2)", "t.zeros(4).chunk(0)",
    "t.zeros(4).chunk(2.0)", "t.zeros(4).split(-1)", "t.zeros(4).split(2, 1)",
    "t.zeros(()).split(1)", "t.zeros(2, 4).split([1, 2], 1)", "t.zeros(4).split([1, -1, 4])",
    "t.zeros(4).split([2, 2], 1)", "t.zeros(3).mT", "t.zeros(3).mH",
    "t.zeros(3).broadcast_to((2, 4))",
    # value checks
    "F.binary_cross_entropy(t.tensor([.5, 1.2]), t.tensor([1., 0.]))",
    "F.binary_cross_entropy(t.tensor([nan, .2]), t.tensor([1., 0.]))",
    "F.binary_cross_entropy(t.tensor([.5, .2]), t.tensor([1.5, 0.]))",
    "t.zeros(()).index_select(0, t.tensor([0, 0]))",
    "t.zeros(()).index_select(0, t.tensor([], dtype=t.long))",
    "t.zeros(()).index_select(0, t.tensor([1]))",
    "t.zeros(2, 3).permute()", "t.zeros(()).permute()",
]
SUCCEEDS = [
    f"t.log({B})", f"t.sqrt({B})", f"t.rsqrt({B})", f"t.reciprocal({B})", f"t.pow({B}, 2)",
    f"t.pow({B}, True)", f"t.relu({L})", "F.relu6(t.tensor([-1, 7]))",
    f"t.addcmul({L}, {L}, {L})", f"t.addcmul(t.tensor([1.]), {B}, {B})",
    f"t.pow({L}, t.tensor([-1, 2]))",
    "t.pow(t.tensor([2, 1, -1, -2, 0, -1]), t.tensor([-1, -1, -1, -1, -1, -2]))",
    "t.pow(t.tensor(2), t.tensor(-1))", "t.pow(2, t.tensor([-1, 2]))",
    "F.binary_cross_entropy_with_logits(t.tensor([.5, .2], dtype=t.float64), "
    "t.tensor([1., 0.]))",
    "F.binary_cross_entropy_with_logits(t.tensor([.5, .2]), "
    "t.tensor([1., 0.], dtype=t.float64))",
    "F.binary_cross_entropy(t.tensor([0., 1.]), t.tensor([1., 0.]), reduction='sum')",
    "F.l1_loss(t.tensor([.5, .2]), t.tensor([1., 0.], dtype=t.float64))",
    "F.l1_loss(t.tensor([1, 2]), t.tensor([1., 0.]))", f"F.l1_loss({L}, {L}, reduction='sum')",
    "F.mse_loss(t.tensor([.5, .2]), t.tensor([1., 0.], dtype=t.float64))",
    f"t.logsumexp({L}, 0)", f"t.logsumexp({B}, 0)", "t.tensor([[1, 2], [3, 4]]).logsumexp(1)",
    f"F.cosine_similarity({B}, t.tensor([1., 2.]), 0)",
    f"F.cosine_similarity({L}, t.tensor([1., 2.], dtype=t.float64), 0)",
    "t.zeros(()).mT", "t.zeros(()).mH", "t.zeros(2, 3).mH",
    "t.zeros(3).broadcast_to((2, 3))", "t.zeros(3).broadcast_to(2, 3)",
    "t.zeros(()).index_select(0, t.tensor([0]))", "t.zeros(()).permute(())",
    "t.zeros(5).split([2, 3])", "t.zeros(5).chunk(2)", "t.zeros(0).split(0)",
]


@pytest.mark.parametrize("code", RAISES)
def test_raises_as_pytorch(code):
    want = _run(torch, code)
    assert want[0] == "raised", want
    got = _run(rg, code)
    assert got[0] == "raised", got
    assert issubclass(got[1], want[1]), (got, want)
    assert got[2] == want[2]


@pytest.mark.parametrize("code", SUCCEEDS)
def test_succeeds_as_pytorch(code):
    want = _run(torch, code)
    assert want[0] == "ok", want
    got = _run(rg, code)
    assert got[:2] == want[:2]
    pairs = zip(got[2], want[2]) if isinstance(want[1][0], tuple) else [(got[2], want[2])]
    for ours, theirs in pairs:
        np.testing.assert_allclose(np.asarray(ours, dtype=float),
                                   np.asarray(theirs, dtype=float), rtol=1e-6)
