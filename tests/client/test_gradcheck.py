"""torch.autograd.gradcheck and gradgradcheck against PyTorch's: the same verdicts on
correct and wrong backward rules (first and second order), the same exception class and
message (Jacobians within print precision), raise_exception=False, and the input checks."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import remotegrad as rg
from remotegrad.autograd.gradcheck import GradcheckError

X = np.linspace(-1.5, 1.2, 5)
M = np.arange(6.0).reshape(2, 3) / 4 - 0.6


def _functions(lib):
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    class WrongCube(Cube):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x ** 2

    class DetachedCube(Cube):
        """Right first derivative, but no second: backward leaves the graph."""
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() ** 2

    return {
        "sin": (lib.sin, 1),
        "sum_of_squares": (lambda t: (t * t).sum(), 1),
        "cube": (Cube.apply, 1),
        "wrong_cube": (WrongCube.apply, 1),
        "detached_cube": (DetachedCube.apply, 1),
        "matmul_two_inputs": (lambda a, b: a @ b.t(), 2),
        "two_outputs": (lambda a, b: (a.exp(), (a * b).sum(1)), 2),
        "second_input_wrong": (lambda a, b: (a + WrongCube.apply(b[:, :1])).tanh(), 2),
    }


def _inputs(lib, arity):
    arrays = [X] if arity == 1 else [M, M[::-1].copy() + 0.3]
    return tuple(lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays)


def _outcome(call, *args, **kwargs):
    try:
        return ("ok", call(*args, **kwargs))
    except Exception as e:  # the class name and message are what is compared
        return (type(e).__name__, str(e))


def _numbers(text: str) -> list[float]:
    import re
    return [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", text)]


def _same(mine, ref):
    assert mine[0] == ref[0], (mine, ref)
    if mine[0] == "ok":
        assert mine[1] == ref[1]
        return
    assert mine[1].splitlines()[0] == ref[1].splitlines()[0]
    np.testing.assert_allclose(_numbers(mine[1]), _numbers(ref[1]), rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
@pytest.mark.parametrize("name", sorted(_functions(torch)))
def test_verdict_and_message_match_pytorch(name, check):
    func, arity = _functions(torch)[name]
    out = func(*_inputs(torch, arity))
    shapes = [tuple(o.shape) for o in (out if isinstance(out, tuple) else (out,))]
    results = []
    for lib in (rg, torch):
        func, arity = _functions(lib)[name]
        kwargs = dict(eps=1e-6, atol=1e-4)
        if check == "gradgradcheck":  # the same seeds for both (else random ones)
            kwargs["grad_outputs"] = tuple(
                lib.tensor(np.cos(np.arange(np.prod(s)) + 0.5).reshape(s),
                           dtype=lib.float64, requires_grad=True) for s in shapes)
        run = getattr(lib.autograd, check)
        results.append(_outcome(run, func, _inputs(lib, arity), **kwargs))
    _same(*results)


@pytest.mark.parametrize("name", ["cube", "wrong_cube", "detached_cube"])
def test_raise_exception_false_returns_the_verdict(name):
    verdicts = []
    for lib in (rg, torch):
        func, arity = _functions(lib)[name]
        verdicts.append((lib.autograd.gradcheck(func, _inputs(lib, arity),
                                                raise_exception=False),
                         lib.autograd.gradgradcheck(func, _inputs(lib, arity),
                                                    raise_exception=False)))
    assert verdicts[0] == verdicts[1]


def test_a_wrong_rule_raises_a_runtime_error_subclass():
    func, _ = _functions(rg)["wrong_cube"]
    with pytest.raises(GradcheckError) as info:
        rg.autograd.gradcheck(func, _inputs(rg, 1))
    assert isinstance(info.value, RuntimeError)
    assert str(info.value).startswith("Jacobian mismatch for output 0 with respect to input 0,")


def test_input_checks_match_pytorch():
    mine = _outcome(lambda: rg.autograd.gradcheck(rg.sin, (rg.tensor(X),)))
    ref = _outcome(lambda: torch.autograd.gradcheck(torch.sin, (torch.tensor(X),)))
    assert mine == ref and ref[0] == "ValueError"
    caught = []
    for lib in (rg, torch):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            x = lib.tensor(X, dtype=lib.float32, requires_grad=True)
            lib.autograd.gradcheck(lib.sin, (x,), eps=1e-3, atol=1e-2, raise_exception=False)
        caught.append([str(w.message) for w in seen if w.category is UserWarning])
    assert caught[0] == caught[1] and caught[0]


def _constant(lib):
    return lambda t: lib.ones(3, dtype=lib.float64)


def test_an_output_that_does_not_require_grad():
    # no differentiable output: the numerical Jacobian must then be zero
    results = []
    for lib in (rg, torch):
        x = _inputs(lib, 1)[0]
        results.append((_outcome(lib.autograd.gradcheck, lambda t: t.detach() * 2, (x,)),
                        _outcome(lib.autograd.gradcheck, _constant(lib), (x,))))
    assert results[0] == results[1]
    assert results[0][0][0] == "GradcheckError"


def test_import_paths_as_in_pytorch():
    code = ("import sys, remotegrad; sys.modules['torch'] = remotegrad\n"
            "import torch\n"
            "from torch.autograd.gradcheck import GradcheckError, gradcheck\n"
            "from torch.autograd import gradgradcheck\n"
            "assert torch.autograd.gradcheck is gradcheck and callable(gradgradcheck)\n"
            "assert issubclass(GradcheckError, RuntimeError)\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
