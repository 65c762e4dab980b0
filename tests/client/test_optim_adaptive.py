"""RMSprop, Adagrad, Adadelta, NAdam and RAdam against torch.optim: defaults, param_groups,
argument errors, state_dict round trips and parameters step by step in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

CASES = [
    ("RMSprop", {}), ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(centered=True, alpha=0.9, maximize=True)),
    ("RMSprop", dict(centered=True, momentum=0.5, eps=1e-3)),
    ("Adagrad", {}), ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1,
                                      initial_accumulator_value=0.3)),
    ("Adadelta", {}), ("Adadelta", dict(lr=0.5, rho=0.7, weight_decay=0.2, maximize=True)),
    ("NAdam", {}), ("NAdam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True,
                   momentum_decay=0.01)),
    ("RAdam", {}), ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1, decoupled_weight_decay=True)),
]
IDS = [f"{n}-{k}" for n, k in CASES]
R = np.random.default_rng(11)
W0, B0 = R.standard_normal((3, 4)), R.standard_normal(3)
X, Y = R.standard_normal((5, 4)), R.standard_normal((5, 3))


def _params(lib):
    return [lib.tensor(W0, requires_grad=True), lib.tensor(B0, requires_grad=True)]


def _loss(lib, w, b):
    return ((lib.tanh(lib.tensor(X) @ w.T + b) - lib.tensor(Y)) ** 2).sum()


def _run(lib, name, kwargs, steps=6):
    w, b = _params(lib)
    opt = getattr(lib.optim, name)([{"params": [w]}, {"params": [b], "lr": 0.05}], **kwargs)
    seen = []
    for step in range(steps):
        opt.zero_grad()
        _loss(lib, w, b).backward()
        opt.step()
        seen += [(f"step {step} w", w.detach()), (f"step {step} b", b.detach())]
    return opt, seen


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_steps_match_pytorch_in_float64(name, kwargs):
    opt_o, ours = _run(rg, name, kwargs)
    opt_t, theirs = _run(torch, name, kwargs)
    for (key, a), (_, b) in zip(ours, theirs):
        close(a, b, rtol=1e-10, atol=1e-12, what=key)
    so, st = opt_o.state_dict(), opt_t.state_dict()
    assert so["param_groups"] == st["param_groups"]
    assert list(so["state"]) == list(st["state"])
    for i in st["state"]:
        assert list(so["state"][i]) == list(st["state"][i])
        for key, value in st["state"][i].items():
            close(so["state"][i][key], value, rtol=1e-10, atol=1e-12, what=f"state {i} {key}")


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_defaults_repr_and_fresh_state_match(name):
    opt_o = getattr(rg.optim, name)(_params(rg))
    opt_t = getattr(torch.optim, name)(_params(torch))
    assert opt_o.defaults == opt_t.defaults
    assert repr(opt_o) == repr(opt_t)
    so, st = opt_o.state_dict(), opt_t.state_dict()
    assert so["param_groups"] == st["param_groups"]
    assert {i: list(s) for i, s in so["state"].items()} == {
        i: list(s) for i, s in st["state"].items()}  # Adagrad's state exists before a step


def test_state_dict_resumes_where_it_stopped(tmp_path):
    # through a checkpoint file, as a training script resumes (a state_dict holds the
    # optimiser's own tensors, in PyTorch too)
    for name, kwargs in CASES:
        w, b = _params(rg)
        opt = getattr(rg.optim, name)([w, b], **kwargs)
        for _ in range(2):
            opt.zero_grad()
            _loss(rg, w, b).backward()
            opt.step()
        rg.save(opt.state_dict(), tmp_path / "opt.pt")
        saved = rg.load(tmp_path / "opt.pt")
        w2, b2 = (p.detach().clone().requires_grad_(True) for p in (w, b))
        resumed = getattr(rg.optim, name)([w2, b2], **kwargs)
        resumed.load_state_dict(saved)
        for opt_, (pw, pb) in ((opt, (w, b)), (resumed, (w2, b2))):
            opt_.zero_grad()
            _loss(rg, pw, pb).backward()
            opt_.step()
        assert rg.allclose(w, w2, rtol=0, atol=0) and rg.allclose(b, b2, rtol=0, atol=0), name


BAD = [("RMSprop", dict(lr=-1)), ("RMSprop", dict(alpha=-0.1)),
       ("RMSprop", dict(momentum=-1)), ("RMSprop", dict(eps=-1)),
       ("Adagrad", dict(lr_decay=-1)), ("Adagrad", dict(initial_accumulator_value=-1)),
       ("Adagrad", dict(eps=-1)), ("Adadelta", dict(rho=1.5)),
       ("Adadelta", dict(weight_decay=-1)), ("NAdam", dict(betas=(0.9, 1.0))),
       ("NAdam", dict(momentum_decay=-1)), ("RAdam", dict(betas=(-0.1, 0.9))),
       ("RAdam", dict(lr=-0.5))]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{k}" for n, k in BAD])
def test_argument_errors_match(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)(_params(torch), **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(rg.optim, name)(_params(rg), **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_float32_parameters_under_nadam_match():
    # mu_product is a float32 state tensor in PyTorch: its rounding shows in float32 runs
    def run(lib):
        w = lib.tensor(W0.astype("float32"), requires_grad=True)
        opt = lib.optim.NAdam([w], lr=0.05)
        for _ in range(4):
            opt.zero_grad()
            (w ** 2).sum().backward()
            opt.step()
        return w, opt.state_dict()["state"][0]["mu_product"]
    (w_o, mu_o), (w_t, mu_t) = run(rg), run(torch)
    close(w_o.detach(), w_t.detach(), rtol=1e-6, atol=1e-7)
    close(mu_o, mu_t, rtol=0, atol=0, what="mu_product")
