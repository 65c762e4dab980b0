"""floor, ceil, round (with decimals), trunc (and fix), log10, exp2, asin, acos, atan, sinh
and cosh through the SDK, against PyTorch: each form (torch.x, Tensor.x, Tensor.x_),
values and dtypes (integer inputs included), PyTorch's refusals, grad_fn names of the
results and of their gradients made with create_graph, and second derivatives. (The
catalog's samples drive the engine-level checks in tests/engine: PyTorch, finite
differences, second order.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(5)
WIDE = (R.standard_normal((3, 4)) * 3).astype("float32")
HALVES = np.array([0.5, 1.5, 2.5, -0.5, -2.5, -0.0, float("nan"), float("inf"), 1.25, 0.05,
                   2.675, 1234.5678], dtype="float32")
UNIT = R.uniform(-0.9, 0.9, (3, 4)).astype("float32")
POS = R.uniform(0.5, 2.0, (3, 4)).astype("float32")
INTS = np.array([[-7, 0, 3], [12, -1, 5]], dtype="int64")

ROUNDING = ["floor", "ceil", "trunc", "fix", "round"]
# name -> input values in its domain
SMOOTH = {"log10": POS, "exp2": WIDE, "asin": UNIT, "acos": UNIT, "atan": WIDE,
          "sinh": UNIT * 3, "cosh": UNIT * 3}


def _both(values, requires_grad=False):
    return (rg.tensor(values, requires_grad=requires_grad),
            torch.tensor(values, requires_grad=requires_grad))


def _name(t):
    return None if t.grad_fn is None else type(t.grad_fn).__name__


CASES = [(n, v, {}) for n in ROUNDING for v in (WIDE, HALVES)] + [
    ("round", v, {"decimals": d}) for v in (WIDE, HALVES) for d in (0, 1, 2, -1, -2)] + [
    (n, v, {}) for n, v in SMOOTH.items()]
IDS = [f"{n}-{len(v)}-{kw}" for n, v, kw in CASES]


@pytest.mark.parametrize("name,values,kw", CASES, ids=IDS)
def test_function_method_and_inplace_match_torch(name, values, kw):
    (o, t) = _both(values, requires_grad=True)
    ours, theirs = getattr(rg, name)(o, **kw), getattr(torch, name)(t, **kw)
    close(ours, theirs, rtol=1e-6, atol=1e-6, what=f"torch.{name}")
    assert _name(ours) == _name(theirs), name  # RoundBackward1 when decimals is given
    m_ours, m_theirs = getattr(o, name)(**kw), getattr(t, name)(**kw)
    close(m_ours, m_theirs, rtol=1e-6, atol=1e-6, what=f"Tensor.{name}")
    assert _name(m_ours) == _name(m_theirs)
    (a, b) = _both(values)
    assert getattr(a, f"{name}_")(**kw) is a
    getattr(b, f"{name}_")(**kw)
    close(a, b, rtol=1e-6, atol=1e-6, what=f"Tensor.{name}_")


@pytest.mark.parametrize("name", ROUNDING)
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_integer_input_is_returned_unchanged_in_its_dtype(name, dtype):
    values = INTS.astype(dtype) if dtype != "uint8" else np.abs(INTS).astype(dtype)
    (o, t) = _both(values)
    ours, theirs = getattr(rg, name)(o), getattr(torch, name)(t)
    close(ours, theirs, rtol=0, atol=0)
    assert ours.tolist() == values.tolist()
    a = rg.tensor(values)
    assert getattr(a, f"{name}_")() is a and a.tolist() == values.tolist()


@pytest.mark.parametrize("name", ["log10", "exp2", "asin", "acos", "atan", "sinh", "cosh"])
def test_integer_input_gives_the_default_float(name):
    (o, t) = _both(np.array([0, 1, 2]))
    close(getattr(rg, name)(o), getattr(torch, name)(t), what=name)


REFUSED = [("floor", "bool", {}), ("ceil", "bool", {}), ("trunc", "bool", {}),
           ("fix", "bool", {}), ("round", "bool", {}), ("round", "bool", {"decimals": 1}),
           ("round", "int64", {"decimals": 0}), ("round", "int32", {"decimals": 2}),
           ("round", "int64", {"decimals": -1})]


@pytest.mark.parametrize("name,dtype,kw", REFUSED, ids=[f"{n}-{d}-{k}" for n, d, k in REFUSED])
def test_refusals_are_pytorchs(name, dtype, kw):
    values = np.array([1, 0, 1]).astype(dtype)
    with pytest.raises(RuntimeError) as theirs:
        getattr(torch, name)(torch.tensor(values), **kw)
    with pytest.raises(RuntimeError) as ours:
        getattr(rg, name)(rg.tensor(values), **kw)
    assert str(ours.value) == str(theirs.value)


def test_round_takes_decimals_by_keyword_only():
    for lib in (torch, rg):
        with pytest.raises(TypeError):
            lib.round(lib.tensor([1.25]), 1)


# Where the first derivative's last op is named otherwise than PyTorch's (same values):
# name -> (the name remotegrad gives, why).
KNOWN = {"exp2": ("MulBackward0", "PyTorch's formula ends with a C++ mul(Tensor, Scalar) by "
                  "ln 2 (MulBackward1); the rule's mul by a Python number is named as that "
                  "product is at the user level in PyTorch (MulBackward0)")}
GRAD_CASES = [(n, WIDE, {}) for n in ROUNDING] + [("round", WIDE, {"decimals": 1})] + [
    (n, v, {}) for n, v in SMOOTH.items()]


@pytest.mark.parametrize("name,values,kw", GRAD_CASES,
                         ids=[f"{n}-{kw}" for n, _, kw in GRAD_CASES])
def test_gradients_with_create_graph_match_torch(name, values, kw):
    """First derivative (zero for the rounding ops, with no grad_fn: PyTorch's
    zeros_like), then the second derivative where the first requires grad."""
    seed = R.standard_normal(values.shape).astype("float32")
    results = []
    for lib in (rg, torch):
        x = lib.tensor(values, requires_grad=True)
        y = getattr(lib, name)(x, **kw)
        (g,) = lib.autograd.grad(y, x, lib.tensor(seed), create_graph=True)
        second = None
        if g.requires_grad:
            (second,) = lib.autograd.grad((g * g).sum(), x)
        results.append((g, second))
    (g_o, s_o), (g_t, s_t) = results
    close(g_o, g_t, rtol=1e-5, atol=1e-6, what=f"{name} first derivative")
    assert g_o.requires_grad == g_t.requires_grad
    assert _name(g_o) == KNOWN.get(name, (_name(g_t),))[0], name
    assert (s_o is None) == (s_t is None)
    if s_t is not None:
        close(s_o, s_t, rtol=1e-4, atol=1e-5, what=f"{name} second derivative")


def test_float64_second_derivatives_of_the_smooth_ops():
    x64 = np.array([-0.7, -0.2, 0.3, 0.85])
    for name in SMOOTH:
        xs = x64 + 1.5 if name == "log10" else x64
        outs = []
        for lib in (rg, torch):
            x = lib.tensor(xs, dtype=lib.float64, requires_grad=True)
            (g,) = lib.autograd.grad(getattr(lib, name)(x).sum(), x, create_graph=True)
            (h,) = lib.autograd.grad(g.sum(), x)
            outs.append((g, h))
        close(outs[0][0], outs[1][0], rtol=1e-12, atol=1e-14, what=f"{name}'")
        close(outs[0][1], outs[1][1], rtol=1e-12, atol=1e-14, what=f"{name}''")


@pytest.mark.parametrize("name", ["floor", "round", "log10", "exp2", "asin", "acos", "atan",
                                  "sinh", "cosh"])
def test_function_transforms_match_torch(name):
    """torch.func over the new ops: vmap, grad, jvp, and per-sample gradients."""
    xs = R.uniform(0.1, 0.9, (3, 4))
    got = []
    for lib in (rg, torch):
        fn = getattr(lib, name)
        x = lib.tensor(xs)
        got.append([lib.func.vmap(lambda a: fn(a).sum())(x),  # noqa: B023
                    lib.func.grad(lambda a: fn(a).sum())(x),  # noqa: B023
                    lib.func.jvp(fn, (x,), (lib.ones_like(x),))[1],
                    lib.func.vmap(lib.func.grad(fn))(x.flatten())])
    for what, a, b in zip(("vmap", "grad", "jvp", "per-sample grad"), *got):
        close(a, b, rtol=1e-12, atol=1e-14, what=f"{name} {what}")
