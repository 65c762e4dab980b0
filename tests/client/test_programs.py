"""Random small programs (chains of PyTorch calls with broadcasting, reductions, indexing
and in-place updates) run through remotegrad and through PyTorch: same values, same
grad_fn names, same gradients."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import remotegrad as rg
from torchref import close

UNARY = ["exp", "tanh", "sigmoid", "relu", "abs", "neg", "sin", "cos",
         "softmax(-1)", "log_softmax(0)", "sum(-1, keepdim=True)", "mean(0)", "amax(-1)",
         "flatten()", "T", "clamp(-0.5, 0.5)", "pow(2)", "reshape(-1)", "unsqueeze(0)",
         "[..., :2]", "[0]", "cumsum(-1)", "norm(dim=-1)", "std(0)"]
BINARY = ["+", "-", "*", "/", "maximum", "minimum", "where"]


def _apply_unary(t, code):
    if code == "T":
        return t.T if t.dim() >= 2 else t
    if code.startswith("["):
        return eval(f"t{code}") if t.dim() >= 1 and t.shape[-1] >= 2 and t.shape[0] >= 1 else t
    if code in ("softmax(-1)", "log_softmax(0)", "sum(-1, keepdim=True)", "amax(-1)",
                "cumsum(-1)", "norm(dim=-1)", "mean(0)", "std(0)") and t.dim() == 0:
        return t
    if code == "std(0)" and t.shape[0] < 2:
        return t
    return eval(f"t.{code}" if "(" in code else f"t.{code}()")


def _apply_binary(lib, a, b, code):
    if code == "where":
        return lib.where(a > 0, a, b)
    if code in ("maximum", "minimum"):
        return getattr(lib, code)(a, b)
    if code == "/":
        return a / (b.abs() + 1)
    return eval(f"a {code} b")


program = st.lists(st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 2)),
                   min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(program, st.sampled_from([(3, 4), (4,), (2, 3, 4)]), st.integers(0, 2**16))
def test_random_programs_match_pytorch(steps, shape, seed):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape).astype("float32")
    other = rng.standard_normal(shape[-1:]).astype("float32")  # broadcasts from the right
    results = []
    for lib in (rg, torch):
        x = lib.tensor(data, requires_grad=True)
        w = lib.tensor(other, requires_grad=True)
        t, names = x, []
        for code, pick in steps:
            if code in BINARY:
                b = w if pick else x.sum(0) if x.dim() > 1 else w
                if t.shape and b.shape and t.shape[-1] != b.shape[-1]:
                    b = b.sum()
                t = _apply_binary(lib, t, b, code)
            else:
                t = _apply_unary(t, code)
            names.append(type(t.grad_fn).__name__ if t.grad_fn is not None else None)
        if pick == 1:
            with lib.no_grad():
                x.mul_(1)  # an in-place change after the graph: same error or none
        cot = np.random.default_rng(seed + 1).standard_normal(tuple(t.shape))
        seed_grad = lib.tensor(np.asarray(cot, dtype="float32"))
        try:
            t.backward(seed_grad)
            error = None
        except RuntimeError as e:
            error = str(e)
        results.append((t, names, x.grad, w.grad, error))
    (t_o, n_o, xg_o, wg_o, e_o), (t_t, n_t, xg_t, wg_t, e_t) = results
    close(t_o.detach(), t_t.detach(), rtol=1e-4, atol=1e-5, what="forward")
    assert n_o == n_t
    assert e_o == e_t
    if e_t is not None:
        return
    close(xg_o, xg_t, rtol=1e-3, atol=1e-4, what="grad x")
    if wg_t is None:
        assert wg_o is None
    else:
        close(wg_o, wg_t, rtol=1e-3, atol=1e-4, what="grad w")
