"""gradcheck(check_forward_ad=True): the forward-mode Jacobian (forward_ad's dual numbers)
against finite differences, with PyTorch's verdicts and messages, alone
(check_backward_ad=False) or after the backward check; both off is PyTorch's
AssertionError."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg

X = np.linspace(-1.5, 1.2, 5)
M = np.arange(6.0).reshape(2, 3) / 4 - 0.6


def _cube(lib, factor):
    """x³ whose backward and jvp both use factor·x² (3: right, 1: wrong)."""
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.save_for_forward(x)
            ctx.x = x
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * factor * x ** 2

        @staticmethod
        def jvp(ctx, t):
            return t * factor * ctx.x ** 2
    return Cube.apply


CASES = {
    "elementwise": lambda L: (lambda x: (x.sin() * x).exp(), [X]),
    "two_inputs_two_outputs": lambda L: (lambda a, b: ((a @ b).tanh(), (a * a).sum()),
                                         [M, M.T.copy()]),
    "one_output_unreached": lambda L: (lambda a, b: (a * 2, b.detach() * 3), [X, X]),
    "right_custom": lambda L: (_cube(L, 3), [X]),
    "wrong_custom": lambda L: (_cube(L, 1), [X]),
}


def _verdict(lib, name, **flags):
    fn, arrays = CASES[name](lib)
    inputs = tuple(lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays)
    try:
        return lib.autograd.gradcheck(fn, inputs, **flags), ""
    except Exception as e:  # the class and message are what is compared
        return type(e).__name__, str(e)


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("name", CASES)
def test_forward_mode_verdicts_match_pytorch(name, backward):
    flags = dict(check_forward_ad=True, check_backward_ad=backward)
    mine, ref = _verdict(rg, name, **flags), _verdict(torch, name, **flags)
    assert mine == ref


def test_raise_exception_false_gives_false():
    fn, arrays = CASES["wrong_custom"](rg)
    x = rg.tensor(arrays[0], dtype=rg.float64, requires_grad=True)
    assert rg.autograd.gradcheck(fn, (x,), check_forward_ad=True, check_backward_ad=False,
                                 raise_exception=False) is False


def test_both_checks_off_is_pytorchs_assertion():
    found = []
    for lib in (rg, torch):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        with pytest.raises(AssertionError) as e:
            lib.autograd.gradcheck(lambda t: t * 2, (x,), check_forward_ad=False,
                                   check_backward_ad=False)
        found.append(str(e.value))
    assert found[0] == found[1]


@pytest.mark.parametrize("rev,undefined", [(False, True), (False, False), (True, True)])
@pytest.mark.parametrize("name", ["elementwise", "two_inputs_two_outputs", "right_custom"])
def test_gradgradcheck_forward_over_reverse_matches_pytorch(name, rev, undefined):
    found = []
    for lib in (rg, torch):
        fn, arrays = CASES[name](lib)
        inputs = tuple(lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays)
        outputs = [o for o in (fn(*inputs) if isinstance(fn(*inputs), tuple)
                               else (fn(*inputs),)) if o.requires_grad]
        seeds = tuple(lib.tensor(np.linspace(-1, 1, o.numel()).reshape(tuple(o.shape)),
                                 dtype=lib.float64, requires_grad=True) for o in outputs)
        try:
            found.append(lib.autograd.gradgradcheck(
                fn, inputs, seeds, check_fwd_over_rev=True, check_rev_over_rev=rev,
                check_undefined_grad=undefined))
        except Exception as e:
            found.append((type(e).__name__, str(e)))
    assert found[0] == found[1]


def test_gradgradcheck_with_both_checks_off_is_pytorchs_assertion():
    found = []
    for lib in (rg, torch):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        with pytest.raises(AssertionError) as e:
            lib.autograd.gradgradcheck(lambda t: t * t, (x,), check_fwd_over_rev=False,
                                       check_rev_over_rev=False)
        found.append(str(e.value))
    assert found[0] == found[1]
