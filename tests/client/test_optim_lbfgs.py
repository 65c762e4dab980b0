"""LBFGS against torch.optim.LBFGS in float64: parameters and losses after each step(closure),
with and without the strong-Wolfe line search, a short history, the state it keeps and
its argument errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(17)
A = R.standard_normal((6, 4))
B = R.standard_normal(6)
START = R.standard_normal(4)

CASES = [{}, {"lr": 0.5, "max_iter": 5}, {"history_size": 2, "max_iter": 7},
         {"line_search_fn": "strong_wolfe"},
         {"line_search_fn": "strong_wolfe", "history_size": 3, "max_iter": 4, "lr": 0.8}]


def _run(lib, kwargs, steps=3):
    x = lib.tensor(START, requires_grad=True)
    w = lib.tensor(np.array([0.3, -0.2]), requires_grad=True)  # a second parameter
    opt = lib.optim.LBFGS([x, w], **kwargs)
    calls = []

    def closure():
        opt.zero_grad()
        r = lib.tensor(A) @ x - lib.tensor(B)
        # a smooth non-quadratic objective: the line search has work to do
        loss = (lib.log(1 + r * r)).sum() + (x * x).sum() * 0.1 + ((w - 1) ** 4).sum()
        loss.backward()
        calls.append(loss.item())
        return loss

    seen = []
    for step in range(steps):
        out = opt.step(closure)
        seen += [(f"step {step} loss", out.item()), (f"step {step} x", x.detach()),
                 (f"step {step} w", w.detach())]
    state = opt.state[x]
    return seen, calls, opt, {k: state[k] for k in ("func_evals", "n_iter")}


@pytest.mark.parametrize("kwargs", CASES, ids=[str(k) for k in CASES])
def test_steps_match_pytorch(kwargs):
    ours, calls_o, opt_o, counts_o = _run(rg, kwargs)
    theirs, calls_t, opt_t, counts_t = _run(torch, kwargs)
    assert len(calls_o) == len(calls_t), "closure evaluations"
    np.testing.assert_allclose(calls_o, calls_t, rtol=1e-9, atol=1e-12)
    for (key, a), (_, b) in zip(ours, theirs):
        if hasattr(a, "shape"):
            close(a, b, rtol=1e-8, atol=1e-10, what=key)
        else:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12), key
    assert counts_o == counts_t
    assert sorted(opt_o.state[opt_o.param_groups[0]["params"][0]]) == sorted(
        opt_t.state[opt_t.param_groups[0]["params"][0]])
    assert opt_o.defaults == opt_t.defaults and repr(opt_o) == repr(opt_t)


def test_a_converged_problem_stops_at_once():
    for lib in (rg, torch):
        x = lib.zeros(3, dtype=lib.float64, requires_grad=True)
        opt = lib.optim.LBFGS([x])
        evaluations = []

        def closure(x=x, evaluations=evaluations, opt=opt):
            opt.zero_grad()
            loss = (x * x).sum()
            loss.backward()
            evaluations.append(1)
            return loss
        assert opt.step(closure).item() == 0.0 and len(evaluations) == 1


def test_argument_errors_match():
    def error(lib, kwargs, groups=False):
        x, y = lib.ones(2, requires_grad=True), lib.zeros(1, requires_grad=True)
        params = [{"params": [x]}, {"params": [y]}] if groups else [x]
        with pytest.raises(Exception) as info:
            opt = lib.optim.LBFGS(params, **kwargs)
            opt.step(lambda: (x * x).sum().backward() or (x - 1).sum())
        return type(info.value).__name__, str(info.value)
    for kwargs, groups in (({"lr": -1}, False), ({"line_search_fn": "armijo"}, False),
                           ({}, True)):
        assert error(rg, kwargs, groups) == error(torch, kwargs, groups)
