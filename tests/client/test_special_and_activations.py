"""The special functions and activations added in special_math / activations (catalog) and
their PyTorch spellings: torch functions, aliases, Tensor and in-place methods,
nn.functional, nn modules. Values, dtypes, grad_fn names and gradients against PyTorch
(the catalog's own tests check every op's first and second order and finite differences)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg

X = [0.3, -0.4, 1.7, -2.5, 0.05]
U = [0.3, 0.6, 0.9, 0.15, 0.45]  # in (0, 1)
P = [1.3, 2.6, 0.9, 3.15, 1.45]  # positive, > 1 where acosh needs it below

CALLS = [
    ("T.asinh(x)", X), ("x.arcsinh()", X), ("T.arcsinh(x)", X),
    ("T.acosh(x + 1)", P), ("x.arccosh()", P), ("T.atanh(x)", U), ("x.arctanh()", U),
    ("T.erfc(x)", X), ("x.erfc()", X), ("T.erfinv(x)", U), ("x.erfinv()", U),
    ("T.lgamma(x)", P), ("x.lgamma()", P), ("T.digamma(x)", P), ("x.digamma()", P),
    ("T.polygamma(1, x)", P), ("x.polygamma(2)", P), ("T.polygamma(0, x)", P),
    ("T.sinc(x)", X), ("x.sinc()", X), ("T.logit(x)", U), ("x.logit(0.2)", U),
    ("T.logit(x, eps=0.35)", U), ("T.deg2rad(x)", X), ("x.rad2deg()", X),
    ("T.atan2(x, x * 0.5 - 1)", X), ("x.arctan2(x + 3)", X), ("T.arctan2(x, x.flip(0))", X),
    ("T.hypot(x, x * 0.5 - 1)", X), ("x.hypot(x.flip(0))", X),
    ("T.var_mean(x)", X), ("T.var_mean(x, 0, correction=0)", X),
    ("T.std_mean(x, unbiased=False)", X), ("T.std_mean(x.reshape(1, 5), 1, keepdim=True)", X),
    ("T.var_mean(x, True)", X),
    ("T.selu(x)", X), ("T.celu(x, 0.5)", X), ("F.selu(x)", X), ("F.celu(x)", X),
    ("F.celu(x, alpha=2.0)", X), ("F.mish(x)", X), ("F.hardswish(x * 3)", X),
    ("F.hardsigmoid(x * 3)", X), ("F.logsigmoid(x * 10)", X), ("F.softsign(x)", X),
    ("F.tanhshrink(x)", X),
    ("nn.SELU()(x)", X), ("nn.CELU(0.7)(x)", X), ("nn.Mish()(x)", X),
    ("nn.Hardswish()(x)", X), ("nn.Hardsigmoid()(x)", X), ("nn.LogSigmoid()(x)", X),
    ("nn.Softsign()(x)", X), ("nn.Tanhshrink()(x)", X), ("nn.ELU(0.5)(x)", X),
    ("nn.ReLU6()(x * 4)", X), ("nn.Softplus(2.0, 1.0)(x)", X),
]


def _run(expression: str, lib, data):
    x = lib.tensor(data, dtype=lib.float64, requires_grad=True)
    out = eval(expression, {"T": lib, "x": x, "F": lib.nn.functional, "nn": lib.nn})
    outs = out if isinstance(out, tuple) else (out,)
    total = sum((o * (i + 1.5)).sum() for i, o in enumerate(outs))
    (grad,) = lib.autograd.grad(total, x)
    return ([o.detach().numpy() for o in outs], [o.grad_fn.name() for o in outs],
            [str(o.dtype) for o in outs], grad.numpy())


@pytest.mark.parametrize("expression,data", CALLS, ids=[c[0] for c in CALLS])
def test_matches_pytorch(expression, data):
    ours, theirs = _run(expression, rg, data), _run(expression, torch, data)
    for a, b in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert ours[1:3] == theirs[1:3]
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-10, atol=1e-12)


INPLACE = ["x.asinh_()", "x.arcsinh_()", "x.erfc_()", "x.sinc_()", "x.deg2rad_()",
           "x.atan2_(x * 2 + 1)", "x.hypot_(x * 2)", "x.lgamma_()", "x.polygamma_(1)",
           "x.logit_(0.25)", "F.selu(x, inplace=True)", "F.mish(x, True)",
           "F.hardswish(x, inplace=True)", "F.celu(x, 1.5, True)"]


@pytest.mark.parametrize("expression", INPLACE)
def test_in_place_forms(expression):
    def run(lib):
        x = lib.tensor(U, dtype=lib.float64)
        out = eval(expression, {"x": x, "F": lib.nn.functional})
        return out is x, x.numpy()
    (same, ours), (theirs_same, theirs) = run(rg), run(torch)
    assert same == theirs_same
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


INTEGER = ["T.asinh(i)", "T.erfc(i)", "T.lgamma(i)", "T.digamma(i)", "T.sinc(i)",
           "T.logit(i)", "T.deg2rad(i)", "T.atan2(i, i)", "T.hypot(i, i)", "T.var_mean(i)",
           "F.selu(i)", "F.mish(i)", "F.hardswish(i)", "F.hardsigmoid(i)", "F.logsigmoid(i)",
           "F.softsign(i)", "F.tanhshrink(i)", "F.celu(x, 0.0)", "T.polygamma(-1, x)",
           "T.atan2(i, 0.5)"]


def _outcome(expression: str, lib) -> str:
    env = {"T": lib, "F": lib.nn.functional, "i": lib.tensor([1, 2, 3]),
           "x": lib.tensor([0.5, 1.5])}
    try:
        out = eval(expression, env)
    except Exception as e:  # noqa: BLE001 (the same error is the expected outcome)
        return f"{type(e).__name__}: {e}"
    return repr(out)


@pytest.mark.parametrize("expression", INTEGER)
def test_integer_inputs_and_refusals(expression):
    assert _outcome(expression, rg) == _outcome(expression, torch)


def test_modules_repr():
    for make in ("nn.SELU()", "nn.SELU(True)", "nn.CELU()", "nn.CELU(0.5, True)", "nn.Mish()",
                 "nn.Mish(inplace=True)", "nn.Hardswish(True)", "nn.Hardsigmoid(True)",
                 "nn.LogSigmoid()", "nn.Softsign()", "nn.Tanhshrink()",
                 "nn.ELU()", "nn.ELU(0.5, True)", "nn.ReLU6()", "nn.ReLU6(True)",
                 "nn.Softplus()", "nn.Softplus(2, 10)",
                 "nn.Sequential(nn.Linear(2, 2), nn.Mish())"):
        assert repr(eval(make, {"nn": rg.nn})) == repr(eval(make, {"nn": torch.nn}))
    from remotegrad.nn.modules import activation
    assert activation.Mish is rg.nn.Mish


HALF = {"asinh": (-4, 4), "acosh": (1.01, 5), "atanh": (-0.99, 0.99), "erfc": (-4, 4),
        "erfinv": (-0.99, 0.99), "lgamma": (0.01, 8), "sinc": (-4, 4), "logit": (0.01, 0.99),
        "deg2rad": (-400, 400), "rad2deg": (-4, 4), "F.mish": (-6, 6), "F.hardswish": (-4, 4),
        "F.hardsigmoid": (-4, 4), "F.logsigmoid": (-6, 6), "F.selu": (-4, 4), "F.celu": (-4, 4),
        "polygamma1": (0.01, 8), "atan2": (-4, 4), "hypot": (-4, 4)}


@pytest.mark.parametrize("name", sorted(HALF))
def test_float16_is_computed_as_pytorch_computes_it(name):
    """float16 inputs are computed in float32 and rounded once (logit: the ratio in float16,
    the log in float32), as PyTorch's CPU kernels: bit-equal values."""
    low, high = HALF[name]
    data = np.random.default_rng(1).uniform(low, high, 2000).astype("float16")

    def run(lib):
        x = lib.tensor(data)
        if name.startswith("F."):
            return getattr(lib.nn.functional, name[2:])(x).numpy()
        if name == "polygamma1":
            return lib.polygamma(1, x).numpy()
        if name in ("atan2", "hypot"):
            return getattr(lib, name)(x, x.flip(0)).numpy()
        return getattr(lib, name)(x).numpy()
    np.testing.assert_array_equal(run(rg), run(torch))


EDGES = [-1.0, -0.0, 0.0, 1.0, float("nan"), 0.1, 0.5, 2.0, 0.2, 0.8, -float("inf"),
         float("inf")]


def _orders(expression: str, lib, data, create_graph: bool):
    """Value, first derivative (with or without create_graph) and, with it, the second."""
    x = lib.tensor(data, dtype=lib.float64, requires_grad=True)
    out = eval(expression, {"T": lib, "x": x, "F": lib.nn.functional})
    (g,) = lib.autograd.grad(out.sum(), x, create_graph=create_graph)
    found = [out.detach().numpy(), g.detach().numpy()]
    if create_graph:
        (g2,) = lib.autograd.grad(g.sum(), x)
        found.append(g2.numpy())
    return found


def _same_bits(ours, theirs):
    """Equal values, NaNs where PyTorch's are, and the signs of its zeros and infinities."""
    np.testing.assert_array_equal(ours, theirs)
    finite = ~np.isnan(theirs)
    np.testing.assert_array_equal(np.signbit(ours[finite]), np.signbit(theirs[finite]))


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("expression", ["T.logit(x)", "T.logit(x, 0.2)", "T.logit(x, 0.0)"])
def test_logit_edges(expression, create_graph):
    """logit's two rules: NaN outside [0, 1] (0 outside [eps, 1 - eps]), the kernel's
    grad * inf at 0 and 1 without grad mode, and NaN with eps reads 0 only with it."""
    ours = _orders(expression, rg, EDGES, create_graph)
    theirs = _orders(expression, torch, EDGES, create_graph)
    for a, b in zip(ours, theirs):
        _same_bits(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sinc_derivative_where_x_squared_underflows(dtype):
    """PyTorch's sinc_backward masks where x * x * pi is 0, so underflowing x (1e-200 in
    float64, 1e-30 in float32) gets 0, not 0 / 0; in its order of operations (float32's
    second derivative at -1.5 and 2 to the bit)."""
    data = [0.0, -0.0, 1e-30, -1e-30, 1e-200, 0.5, -1.5, 2.0, float("inf"), float("nan")]

    def run(lib, create_graph):
        x = lib.tensor(data, dtype=getattr(lib, dtype), requires_grad=True)
        (g,) = lib.autograd.grad(lib.sinc(x).sum(), x, create_graph=create_graph)
        if not create_graph:
            return [g.numpy()]
        (g2,) = lib.autograd.grad(g.sum(), x)
        # (at tiny x the second derivative is a cancellation whose terms PyTorch adds in
        # another order: 0 there, -pi^2 here; not modelled)
        return [g.detach().numpy(), g2.numpy()[5:]]
    for create_graph in (False, True):
        for a, b in zip(run(rg, create_graph), run(torch, create_graph)):
            _same_bits(a, b)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("expression", ["T.lgamma(x)", "T.polygamma(2, x)", "T.polygamma(3, x)",
                                        "T.digamma(x)"])
def test_gamma_family_at_infinities(expression, dtype):
    """lgamma(-inf) is +inf (SciPy's gammaln: -inf); polygamma(n >= 2, inf) is NaN, as
    PyTorch's zeta series computes it (SciPy's: 0)."""
    data = [float("inf"), -float("inf"), float("nan"), 1e30, 1.0, 2.5, -1.5]

    def run(lib):
        x = lib.tensor(data, dtype=getattr(lib, dtype))
        return eval(expression, {"T": lib, "x": x}).numpy()
    ours, theirs = run(rg), run(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3 if dtype == "float16" else 1e-6)
    _same_bits(ours[:3], theirs[:3])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mish_second_derivative_where_exp_overflows(dtype):
    """PyTorch's differentiable mish backward takes softplus as log1p(exp(x)): its second
    derivative is NaN where exp(x) is inf (89 in float32, 710 in float64), not 0."""
    data = [0.5, -2.0, 30.0, 89.0, 710.0, 1e30, -800.0, 0.0]

    def run(lib):
        x = lib.tensor(data, dtype=getattr(lib, dtype), requires_grad=True)
        (g,) = lib.autograd.grad(lib.nn.functional.mish(x).sum(), x, create_graph=True)
        (g2,) = lib.autograd.grad(g.sum(), x)
        return g.detach().numpy(), g2.numpy()
    for a, b in zip(run(rg), run(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == "float32" else 1e-12,
                                   atol=1e-12)
