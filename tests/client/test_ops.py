"""Every entry of the op table, as a function, a method and (where PyTorch has one) an
in-place method, against PyTorch: values, dtypes, grad_fn names and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad import _op_table, _ops
from remotegrad.proto import catalog

from torchref import close

R = np.random.default_rng(7)
A = R.standard_normal((3, 4)).astype("float32")
B = R.standard_normal((4,)).astype("float32")
P = (R.random((3, 4)) + 0.5).astype("float32")
SQ = R.standard_normal((4, 4)).astype("float32")
V3 = R.standard_normal((3,)).astype("float32")
IX = np.array([[0, 2, 1, 3], [1, 1, 0, 2], [3, 0, 2, 1]], dtype="int64")
M = A > 0
IDX = np.array([2, 0], dtype="int64")

# (name, operands, keyword arguments); operands are numpy arrays or Python numbers.
CASES = [
    ("add", (A, B), {}), ("add", (A, 2.5), {"alpha": 2}), ("sub", (A, B), {}),
    ("subtract", (A, 1), {}), ("mul", (A, B), {}), ("multiply", (A, 3), {}),
    ("div", (A, P), {}), ("divide", (A, 2), {}), ("true_divide", (A, P), {}),
    ("div", (A, P), {"rounding_mode": "floor"}), ("pow", (P, 2), {}), ("pow", (P, B), {}),
    ("neg", (A,), {}), ("negative", (A,), {}), ("abs", (A,), {}), ("sign", (A,), {}),
    ("reciprocal", (P,), {}), ("maximum", (A, B), {}), ("minimum", (A, B), {}),
    ("fmod", (A, 0.7), {}), ("remainder", (A, 0.7), {}), ("clamp", (A, -0.5, 0.5), {}),
    ("clamp", (A,), {"min": 0.0}), ("clip", (A,), {"max": 0.1}), ("where", (M, A, B), {}),
    ("exp", (A,), {}), ("log", (P,), {}), ("log1p", (P,), {}), ("expm1", (A,), {}),
    ("log2", (P,), {}), ("sqrt", (P,), {}), ("rsqrt", (P,), {}), ("sin", (A,), {}),
    ("cos", (A,), {}), ("tan", (A * 0.5,), {}), ("tanh", (A,), {}), ("sigmoid", (A,), {}),
    ("relu", (A,), {}), ("erf", (A,), {}),
    ("floor", (A * 3,), {}), ("ceil", (A * 3,), {}), ("trunc", (A * 3,), {}),
    ("fix", (A * 3,), {}), ("round", (A * 3,), {}), ("round", (A * 3,), {"decimals": 1}),
    ("log10", (P,), {}), ("exp2", (A,), {}), ("asin", (np.tanh(A),), {}),
    ("acos", (np.tanh(A),), {}), ("atan", (A,), {}), ("sinh", (A,), {}), ("cosh", (A,), {}),
    ("eq", (A, A), {}), ("ne", (A, 0.0), {}), ("lt", (A, B), {}), ("le", (A, 0), {}),
    ("gt", (A, B), {}), ("ge", (A, B), {}), ("greater", (A, 0), {}), ("less", (A, 0), {}),
    ("logical_and", (M, ~M), {}), ("logical_or", (M, M), {}), ("logical_not", (M,), {}),
    ("logical_xor", (M, M), {}), ("isnan", (A,), {}), ("isfinite", (A,), {}),
    ("all", (M,), {}), ("any", (M,), {"dim": 1}),
    ("sum", (A,), {}), ("sum", (A, 1), {}), ("sum", (A,), {"dim": (0, 1), "keepdim": True}),
    ("mean", (A,), {}), ("mean", (A, 0, True), {}), ("prod", (P, 1), {}), ("prod", (P,), {}),
    ("amax", (A, 1), {}), ("amin", (A,), {"dim": 0}), ("argmax", (A,), {"dim": 1}),
    ("argmin", (A,), {}), ("var", (A,), {}), ("var", (A, 1), {"unbiased": False}),
    ("std", (A,), {"dim": 0, "correction": 0}), ("norm", (A,), {}), ("norm", (A, 1), {}),
    ("norm", (A,), {"dim": 1}), ("logsumexp", (A, 1), {}), ("cumsum", (A, 1), {}),
    ("softmax", (A, 1), {}), ("log_softmax", (A,), {"dim": 0}),
    ("matmul", (A, SQ), {}), ("matmul", (B, SQ), {}), ("mm", (A, SQ), {}),
    ("dot", (B, B * 2), {}), ("outer", (B, V3), {}),
    ("unsqueeze", (A, 1), {}), ("transpose", (A, 0, 1), {}),
    ("swapaxes", (A, 0, 1), {}), ("flip", (A, (0,)), {}), ("tril", (SQ,), {}),
    ("triu", (SQ, 1), {}), ("index_select", (A, 1, IDX), {}), ("gather", (A, 1, IX % 4), {}),
    ("scatter_add", (A, 1, IX % 4, P), {}),
]


def _ids(case):
    name, _, kw = case
    return f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"


def _inputs(operands, lib, grad: bool):
    out = []
    for o in operands:
        if isinstance(o, np.ndarray):
            t = lib.tensor(o)
            if grad and o.dtype.kind == "f":
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(o)
    return out


def _grad_name(t):
    return None if t.grad_fn is None else type(t.grad_fn).__name__


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_function_matches_torch(case):
    name, operands, kw = case
    if not _ops.available(name):
        pytest.skip(f"catalog has no op for {name}")
    ours_in, theirs_in = _inputs(operands, rg, True), _inputs(operands, torch, True)
    ours = getattr(rg, name)(*ours_in, **kw)
    theirs = getattr(torch, name)(*theirs_in, **kw)
    close(ours, theirs, what=f"{name} forward")
    assert _grad_name(ours) == _grad_name(theirs), f"{name} grad_fn"
    if theirs.requires_grad:
        seed = np.asarray(R.standard_normal(tuple(theirs.shape)), dtype="float32")
        ours.backward(rg.tensor(seed, dtype=ours.dtype))
        theirs.backward(torch.tensor(seed, dtype=theirs.dtype))
        for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
            if isinstance(b, torch.Tensor) and b.requires_grad:
                if b.grad is None:
                    assert a.grad is None or not a.grad.numpy().any()
                else:
                    close(a.grad, b.grad, rtol=1e-4, atol=1e-5, what=f"{name} grad {i}")


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_method_and_inplace_match_torch(case):
    name, operands, kw = case
    if not _ops.available(name) or "m" not in _ops.TABLE[name].forms:
        pytest.skip("no method form")
    if not isinstance(operands[0], np.ndarray):
        pytest.skip("first operand is not a tensor")
    ours_in, theirs_in = _inputs(operands, rg, False), _inputs(operands, torch, False)
    ours = getattr(ours_in[0], name)(*ours_in[1:], **kw)
    theirs = getattr(theirs_in[0], name)(*theirs_in[1:], **kw)
    close(ours, theirs, what=f"{name} method")
    if "i" in _ops.TABLE[name].forms and hasattr(theirs_in[0], f"{name}_"):
        try:
            expected = getattr(theirs_in[0].clone(), f"{name}_")(*theirs_in[1:], **kw)
        except RuntimeError as e:
            with pytest.raises(RuntimeError, match=str(e)[:20]):
                getattr(ours_in[0].clone(), f"{name}_")(*ours_in[1:], **kw)
            return
        target = ours_in[0].clone()
        result = getattr(target, f"{name}_")(*ours_in[1:], **kw)
        assert result is target
        close(target, expected, what=f"{name}_ in place")


def test_every_catalog_op_is_exposed():
    """A new op in the catalog fails this until the op table gives it a row (names, or
    none where other client code reaches it: Tensor.max, nn.functional...)."""
    missing = sorted(op for op in catalog.CATALOG
                     if op not in _op_table.ROWS and not _op_table.internal(op))
    assert not missing, f"catalog ops not exposed by the client: {missing}"


def test_equal_valued_leaves_get_separate_gradients():
    x = rg.ones(3, requires_grad=True)
    y = rg.ones(3, requires_grad=True)
    (x * y * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0, 3.0]


def test_gradient_of_an_element_of_a_vector():
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x[1] * 2).backward()
    assert x.grad.tolist() == [0.0, 2.0, 0.0]
