"""Every function and Tensor method of the client's op table, called with tensors and
Python numbers in every input position (and without its required parameters): the
outcome (result dtype, or exception type and message) is PyTorch's. A call PyTorch's
argument parser refuses must not be computed here."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad._op_table import TABLE
from remotegrad.proto import catalog

KINDS = "Tifb"
# PyTorch's "invalid combination" messages whose list of signatures (it marks the
# arguments that did not match each) the client does not write: their first line
FIRST_LINE = frozenset({"remainder", "where", "clamp", "clip", "all", "any", "std", "var",
                        "narrow", "scatter"})  # a tensor, an int, a float, a bool


def _make(lib, kind: str):
    return {"T": lambda: lib.tensor([1.5, -2.0, 3.0]), "i": lambda: 2, "f": lambda: 0.5,
            "b": lambda: True}[kind]()


def _outcome(name: str, form: str, combo: str, lib) -> tuple:
    args = [_make(lib, k) for k in combo]
    try:
        out = (getattr(lib, name)(*args) if form == "f"
               else getattr(args[0], name)(*args[1:]))
    except Exception as e:  # noqa: BLE001 (the same error is the expected outcome)
        text = str(e)
        # multi-overload messages whose signature list the client does not write: line 1
        if name in FIRST_LINE:
            text = text.split("\n")[0]
        return type(e).__name__, text
    return "ok", str(out.dtype) if hasattr(out, "dtype") else type(out).__name__


def _cases():
    for name, spec in sorted(TABLE.items()):
        if spec.op not in catalog.CATALOG:
            continue
        nin = spec.nin if spec.nin is not None else catalog.get(spec.op).nin
        for combo in map("".join, itertools.product(KINDS, repeat=max(nin, 0))):
            if "f" in spec.forms and hasattr(torch, name):
                yield name, "f", combo
            if "m" in spec.forms and combo[0] == "T" and hasattr(torch.Tensor, name):
                yield name, "m", combo


KNOWN: set = set()  # (name, combo) pairs that differ, with why (none left)


def test_every_table_call_form_matches_pytorch():
    mismatches = []
    for name, form, combo in _cases():
        ours, theirs = _outcome(name, form, combo, rg), _outcome(name, form, combo, torch)
        if ours != theirs and (name, combo) not in KNOWN:
            mismatches.append(f"{form} {name}({combo}): {ours} != {theirs}")
    assert not mismatches, "\n".join(mismatches)


CALLS = ["T.maximum(x, 2)", "T.minimum(2, x)", "x.maximum(2)", "x.logical_and(True)",
         "T.logical_or(x, 0.5)", "T.eq(2, x)", "T.eq(2, 3)", "T.lt(0.5, x)", "T.fmod(2, x)",
         "T.fmod(x, 2)", "T.flip(2, (0,))", "T.flip(x)", "x.flip()", "x @ 2", "2 @ x",
         "T.matmul(x, 2)", "x.cumsum()", "x.transpose(0)", "T.pow(2, 3)", "T.pow(2, x)",
         "T.remainder(2, x)", "T.sin(2)", "T.sum(0.5)", "T.where(True, x, x)",
         "T.where(x > 0, 1, 0.5)", "T.cumsum(x, axis=0)", "x.polygamma()",
         "T.add(2, 0.5)", "T.mul(0.5, 0.5)", "T.div(True, 2.5)", "T.sub(3, 2)",
         "T.add(True, True)", "T.norm(2)", "T.narrow(x, 0)",
         # a `float` parameter takes a 0-d tensor that requires no grad (its value)
         "T.nan_to_num(x / 0, T.tensor(2.0))", "(x / 0).nan_to_num(T.tensor(2))",
         "(x / 0).nan_to_num_(T.tensor(2.0))", "T.nan_to_num(x, posinf=T.tensor([1.0, 2.0]))",
         "T.nan_to_num(x, 0.0, 1.0, 'a')", "T.nan_to_num(x, T.tensor(2.0, requires_grad=True))",
         "x.nan_to_num(T.tensor([2.0]))", "T.nan_to_num(x, neginf=T.tensor(-1.0))",
         # and a keyword's type is checked too (its message without a position)
         "T.tile(x, dims=2)", "T.unique(x, sorted=2)",
         # a tensors-only op refuses anything but a tensor (None, a str, a list)
         "x.atan2(None)", "x.hypot('a')", "T.maximum(x, None)", "x.maximum([1.0, 2.0, 3.0])",
         "x.mm(None)", "T.dot(x, None)", "T.logical_and(x, 'a')", "T.atan2(None, x)",
         # flatten's dims are ints (not bools: True was dim 1)
         "x.flatten(True)", "T.flatten(x, True)", "T.flatten(x.reshape(3, 1), 0, 1.5)",
         "T.tensor(1.0).flatten(True)", "T.flatten(x, end_dim='a')", "x.flatten(T.tensor(0))",
         "T.bucketize(x, 2)", "T.bucketize(x, [1.0, 2.0])", "T.bucketize(2, x)",
         # scatter without src or value is no overload of PyTorch's
         "x.scatter(0, T.tensor([0, 1]))", "T.scatter(x, 0, T.tensor([0, 1]))",
         "x.scatter(0, index=T.tensor([0, 1]))", "x.scatter(0, T.tensor([0, 1]), value=2.0)",
         "T.scatter(x, 0, T.tensor([0, 1]), src=T.ones(2))", "x.scatter(0, T.tensor([1]), 5.0)"]


@pytest.mark.parametrize("expression", CALLS)
def test_call_forms(expression):
    def run(lib):
        x = lib.tensor([1.5, -2.0, 3.0])
        try:
            out = eval(expression, {"T": lib, "x": x})
        except Exception as e:  # noqa: BLE001
            return type(e).__name__, str(e)
        return str(out.dtype), out.numpy().tolist()
    ours, theirs = run(rg), run(torch)
    # the client lists no signatures
    if expression.startswith(("T.narrow(", "T.where(True", "T.bucketize(", "T.scatter(",
                              "x.scatter(")):
        ours, theirs = ((o[0], o[1].split("\n")[0] if isinstance(o[1], str) else o[1])
                        for o in (ours, theirs))
    assert ours == theirs


def test_numbers_made_tensors_follow_the_default_dtype():
    for lib in (rg, torch):
        lib.set_default_dtype(lib.float64)
    try:
        out, ref = rg.add(2, 0.5), torch.add(2, 0.5)
    finally:
        for lib in (rg, torch):
            lib.set_default_dtype(lib.float32)
    assert str(out.dtype) == str(ref.dtype)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


# Functions outside the op table (composites, shape and selection functions): a number
# first (or a tensor where PyTorch wants a sequence of them), fmax/fmin a number second.
FIRST = ["argsort", "broadcast_to", "chunk", "clone", "count_nonzero", "cross", "cumprod",
         "detach", "diag", "diagonal", "diff", "flatten", "fmax", "fmin", "frac",
         "is_floating_point", "kron", "kthvalue", "masked_select", "max", "median", "min",
         "nan_to_num", "nonzero", "numel", "permute", "reshape", "roll", "scatter_reduce",
         "select", "sgn", "sort", "t", "take_along_dim", "tile", "topk", "trace", "unbind",
         "unflatten", "unique", "addmm", "clamp_max", "clamp_min", "masked_fill", "moveaxis",
         "movedim", "searchsorted", "std_mean", "var_mean", "atleast_1d", "atleast_2d",
         "atleast_3d", "bucketize", "cat", "concat", "concatenate", "stack", "hstack",
         "vstack", "dstack", "column_stack"]
LISTS = ("cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack")


@pytest.mark.parametrize("name", FIRST)
def test_functions_outside_the_table(name):
    combos = ["i", "f", "iT", "fT", "ii"] + (
        ["Ti", "Tf"] if name in ("fmax", "fmin") else ["T"] if name in LISTS
        else ["Ti", "Tf", "TT"] if name in ("tile", "nan_to_num", "unique") else [])
    for combo in combos:
        def run(lib, combo=combo):
            args = [_make(lib, k) for k in combo]
            try:
                getattr(lib, name)(*args)
            except Exception as e:  # noqa: BLE001 (the parser's refusal: its first line)
                return type(e).__name__, str(e).split("\n")[0]
            return "ok"
        assert run(rg) == run(torch), combo
