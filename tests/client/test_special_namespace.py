"""torch.special's aliases (of ops the client has) and the module-level in-place functions
(torch.sin_(x), torch.selu_(x), torch.celu_(x)): values, dtypes, grad_fn names, gradients
and argument errors against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg

U = [0.3, 0.6, 0.9, 0.15, 0.45]  # in (0, 1): every function below is defined there
CALLS = ["S.erf(x)", "S.erfc(x)", "S.erfinv(x)", "S.expit(x)", "S.logit(x)",
         "S.logit(x, 0.2)", "S.logit(x, eps=0.35)", "S.gammaln(x)", "S.digamma(x)",
         "S.psi(x)", "S.polygamma(1, x)", "S.polygamma(0, x)", "S.sinc(x)", "S.log1p(x)",
         "S.expm1(x)", "S.exp2(x)", "S.logsumexp(x, 0)", "S.logsumexp(x.reshape(1, 5), 1, True)",
         "S.logsumexp(x, dim=0, keepdim=True)", "S.softmax(x, 0)", "S.softmax(x, dim=0)",
         "S.log_softmax(x, 0)", "S.softmax(x, 0, dtype=T.float32)", "S.round(x * 10)",
         "S.round(x * 10, decimals=1)", "S.softmax(x, 0, T.float32)",
         "T.softmax(x, 0, T.float32)", "T.log_softmax(x, 0, T.float32)",
         "x.softmax(0, T.float32)", "x.log_softmax(0, T.float32)"]


def _run(expression: str, lib):
    x = lib.tensor(U, dtype=lib.float64, requires_grad=True)
    out = eval(expression, {"S": lib.special, "T": lib, "x": x})
    (grad,) = lib.autograd.grad((out * 1.5).sum(), x)
    return out.detach().numpy(), out.grad_fn.name(), str(out.dtype), grad.numpy()


@pytest.mark.parametrize("expression", CALLS)
def test_matches_pytorch(expression):
    ours, theirs = _run(expression, rg), _run(expression, torch)
    rtol = 1e-6 if ours[2] == "torch.float32" else 1e-12  # (float32 exp: an ulp apart)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=rtol, atol=1e-14)
    assert ours[1:3] == theirs[1:3]
    np.testing.assert_allclose(ours[3], theirs[3], rtol=rtol * 100, atol=1e-12)


ERRORS = ["S.expit(2)", "S.softmax(x)", "S.logsumexp(x)", "S.logit(2)", "S.erf(x, x)",
          "S.psi(2.5)", "S.gammaln(True)", "S.polygamma(x, 1)", "S.polygamma(1, 2)",
          "S.round(2)", "S.softmax(2, 0)", "S.log_softmax(x, 0, T.float64)",
          "T.sin_(2)", "T.selu_(2)", "T.sin_(x, 1)", "T.selu_(x, 1)", "T.celu_(0.5)",
          "S.round(x, 1)", "S.round(x, decimals=1.5)", "S.round(x, foo=1)", "T.polygamma(1, 2)",
          "T.polygamma(1.5, x)", "T.polygamma(x, 1)", "T.sin_(x, foo=1)", "T.selu_(x, foo=1)"]


@pytest.mark.parametrize("expression", ERRORS)
def test_errors_match_pytorch(expression):
    def run(lib):
        try:
            eval(expression, {"S": lib.special, "T": lib, "x": lib.tensor(U)})
        except Exception as e:  # noqa: BLE001 (the same error is the expected outcome)
            return type(e).__name__, str(e)
        return "no error"
    assert run(rg) == run(torch)


INPLACE = ["T.selu_(x)", "T.celu_(x)", "T.celu_(x, 0.5)", "T.celu_(x, alpha=2.0)",
           "T.sin_(x)", "T.sigmoid_(x)", "T.clamp_(x, 0.2, 0.7)", "T.clamp_(x, min=0.4)",
           "T.round_(x, decimals=1)", "T.logit_(x, 0.2)", "T.relu_(x - 0.5)", "T.exp_(x)",
           "T.nan_to_num_(x)", "T.square_(x)", "T.rsqrt_(x)", "T.frac_(x * 3)",
           "T.sin_(input=x)", "T.selu_(input=x)", "T.celu_(input=x, alpha=2.0)"]


@pytest.mark.parametrize("expression", INPLACE)
def test_module_in_place_functions(expression):
    def run(lib):
        x = lib.tensor(U, dtype=lib.float64) * -2 + 1  # in (-0.8, 0.7): selu's both sides
        x = x.abs() if "logit" in expression or "rsqrt" in expression else x
        out = eval(expression, {"T": lib, "x": x})
        return out is x, out.numpy()
    (same, ours), (theirs_same, theirs) = run(rg), run(torch)
    assert same == theirs_same
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_alias_import_and_names():
    import importlib
    assert importlib.import_module("remotegrad.special") is rg.special
    have = {"erf", "erfc", "erfinv", "expit", "logit", "gammaln", "digamma", "psi",
            "polygamma", "sinc", "log1p", "expm1", "exp2", "logsumexp", "softmax",
            "log_softmax", "round"}
    assert have <= set(dir(torch.special)) and have <= set(dir(rg.special))


GRAD_IN_PLACE = ["T.selu_(x)", "T.celu_(x)", "T.celu_(x, 0.5)", "F.selu(x, inplace=True)",
                 "F.celu(x, 1.5, True)", "F.elu(x, 0.5, True)", "F.leaky_relu(x, 0.1, True)",
                 "F.selu(x)", "F.celu(x, 1.5)", "F.elu(x)", "F.leaky_relu(x, 0.1)"]


@pytest.mark.parametrize("expression", GRAD_IN_PLACE)
def test_in_place_activation_grad_fn(expression):
    """An in-place activation is PyTorch's ...Backward1 node (its own derivative), the
    out-of-place one ...Backward0; the gradients are the same."""
    def run(lib):
        leaf = lib.tensor(U, dtype=lib.float64, requires_grad=True)
        x = leaf * -2 + 1
        out = eval(expression, {"T": lib, "F": lib.nn.functional, "x": x})
        (grad,) = lib.autograd.grad((out * 1.5).sum(), leaf)
        return out.grad_fn.name(), grad.numpy()
    (name, ours), (theirs_name, theirs) = run(rg), run(torch)
    assert name == theirs_name
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_celu_in_place_refuses_other_arguments():
    for expression in ["T.celu_(x, 0.5, 1)", "T.celu_(x, foo=1.0)", "T.celu_(x, 0.5, alpha=1.0)"]:
        def run(lib, expression=expression):
            try:
                eval(expression, {"T": lib, "x": lib.tensor(U)})
            except TypeError as e:
                return str(e)
            return "no error"
        assert run(rg) == run(torch), expression


CHANGED_AFTER = ["F.elu(x, 1.0, True)", "F.selu(x, True)", "F.celu(x, 0.5, True)",
                 "F.leaky_relu(x, 0.1, True)", "T.selu_(x)", "T.celu_(x)", "x.pow(x)"]


@pytest.mark.parametrize("expression", CHANGED_AFTER)
def test_saved_result_changed_in_place(expression):
    """The in-place activations save their result as PyTorch's ...Backward1 do: changed
    again, backward raises its message, which names the node as PyTorch does (Elu1, Pow1:
    only a 0 is dropped with "Backward")."""
    def run(lib):
        x = lib.tensor(U, requires_grad=True) * 1
        y = eval(expression, {"T": lib, "F": lib.nn.functional, "x": x})
        y.mul_(2)
        with pytest.raises(RuntimeError) as e:
            y.sum().backward()
        return str(e.value).split(" Hint:")[0]
    assert run(rg) == run(torch)


# var_mean/std_mean's overloads: (input, dim, unbiased, keepdim), (input, dim, *, correction,
# keepdim), (input, unbiased); another combination is PyTorch's TypeError (its first line)
MEAN_PAIRS = [
    "T.var_mean(x, unbiased=True, correction=1)", "T.var_mean(x, 0, True, correction=1)",
    "T.std_mean(x, True, keepdim=True)", "T.var_mean(x, 0, 0)", "T.std_mean(x, 0, True, 1)",
    "T.var_mean(x, foo=1)", "T.var_mean(x, 0, True, True, 1)", "T.var_mean(x, dim=True)",
    "T.var_mean(x, True)", "T.std_mean(x, 0, False, True)", "T.var_mean(x, None, correction=2)",
    "T.std_mean(x, dim=0, unbiased=False, keepdim=True)", "T.var_mean(x, x)",
    "T.var_mean(x, keepdim=True, unbiased=True, correction=1)"]


@pytest.mark.parametrize("expression", MEAN_PAIRS)
def test_var_mean_arguments(expression):
    def run(lib):
        x = lib.tensor(U, dtype=lib.float64)
        try:
            out = eval(expression, {"T": lib, "x": x})
        except TypeError as e:
            return str(e).split("\n")[0]
        return [round(v, 12) for t in out for v in t.reshape(-1).tolist()]
    assert run(rg) == run(torch)
