"""In-place ops, no_grad views and grad_fn names as PyTorch 2.13 has them (found apart by
the differential tester). Each program runs on PyTorch and on remotegrad; values,
gradients, requires_grad, is_leaf, grad_fn names and errors are compared."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg
from torchref import same_runs


def _run(T, program):
    """The program's observations: (name, value) pairs; an error is one observation."""
    try:
        return program(T)
    except RuntimeError as e:
        return [("error", str(e).split(" Hint:")[0])]


def _name(t):
    return None if t.grad_fn is None else type(t.grad_fn).__name__


def _compare(program):
    same_runs(_run(rg, program), _run(torch, program), rtol=1e-12, atol=1e-12)


def _leaf(T):
    return T.tensor([[0.13], [-0.13]], dtype=T.float64, requires_grad=True)


# --- 1. an in-place op under no_grad keeps a non-leaf's history ---------------------------
def _no_grad_inplace(make, change):
    def program(T):
        v0 = _leaf(T)
        v3 = make(T, v0)
        with T.no_grad():
            change(T, v3)
        out = [("grad_fn", _name(v3)), ("requires_grad", v3.requires_grad),
               ("is_leaf", v3.is_leaf), ("value", v3.detach())]
        loss = v3.sum() + (v0 * v0).logsumexp(-2).sum()
        loss.backward()
        return out + [("grad", v0.grad)]
    return program


MAKERS = {"neg": lambda T, v: v.neg(), "where": lambda T, v: T.where(v > v, v, v),
          "mul": lambda T, v: v * 3}
CHANGES = {"add_": lambda T, v: v.add_(2), "mul_": lambda T, v: v.mul_(v),
           "fill_": lambda T, v: v.fill_(1.5), "zero_": lambda T, v: v.zero_(),
           "copy_": lambda T, v: v.copy_(T.ones(2, 1, dtype=T.float64)),
           "setitem": lambda T, v: v.__setitem__(0, 4.0),
           "data": lambda T, v: v.data.add_(1), "detach": lambda T, v: v.detach().mul_(2)}


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("make", sorted(MAKERS))
def test_no_grad_inplace_keeps_the_history(make, change):
    _compare(_no_grad_inplace(MAKERS[make], CHANGES[change]))


def test_no_grad_inplace_on_a_saved_result_fails_at_backward():
    def program(T):
        v0 = _leaf(T)
        v3 = v0.exp()
        with T.no_grad():
            v3.add_(1)
        v3.sum().backward()
        return [("grad", v0.grad)]
    _compare(program)


# --- 4. saved tensors of an op that ran in place ------------------------------------------
INPLACE = {
    "div_ by a function of the input": lambda T, v: T.log1p(v.abs()).div_(v.abs() + 0.5),
    "sin_": lambda T, v: (v * 1).sin_(),
    "sin_ then add_": lambda T, v: (v * 1).sin_().add_(1),
    "log_ then add_": lambda T, v: (v * 1 + 2).log_().add_(1),
    "pow_ then add_": lambda T, v: (v * 1).pow_(2).add_(1),
    "mul_ then add_": lambda T, v: (v * 1).mul_(v * 2).add_(1),
    "div_ twice": lambda T, v: (v * 1).div_(v + 2).div_(v + 3),
    "exp_ then add_": lambda T, v: (v * 1).exp_().add_(1),
    "sqrt_ then add_": lambda T, v: (v * 1 + 2).sqrt_().add_(1),
    "sigmoid_ then mul_": lambda T, v: (v * 1).sigmoid_().mul_(2),
    "exp_ twice": lambda T, v: (v * 1).exp_().exp_(),
    "mul_ by itself": lambda T, v: (lambda w: w.mul_(w))(v * 1),
    "div_ by itself": lambda T, v: (lambda w: w.div_(w))(v * 1 + 2),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_saved_tensors_of_inplace_ops_are_pytorchs(name):
    def program(T):
        v0 = T.tensor([0.3, -0.7], dtype=T.float64, requires_grad=True)
        out = INPLACE[name](T, v0)
        out.sum().backward()
        return [("grad_fn", _name(out)), ("grad", v0.grad)]
    _compare(program)


# --- fill_/zero_/copy_ with grad mode on --------------------------------------------------
RECORDED = {
    "fill_ number": lambda T, v, w: T.relu(v).fill_(1.5),
    "fill_ tensor": lambda T, v, w: T.relu(v).fill_(T.tensor(2.0, dtype=T.float64)),
    "fill_ tensor that requires grad": lambda T, v, w: T.relu(v).fill_(w),
    "zero_": lambda T, v, w: T.relu(v).zero_(),
    "copy_ leaf": lambda T, v, w: T.relu(v).copy_(v * 2),
    "copy_ constant": lambda T, v, w: T.relu(v).copy_(T.ones(2, 1, dtype=T.float64)),
    "copy_ into a plain tensor": lambda T, v, w: T.zeros(2, 1, dtype=T.float64).copy_(v),
    "copy_ broadcast": lambda T, v, w: T.zeros(2, 1, dtype=T.float64).copy_(w),
    "copy_ cast": lambda T, v, w: T.zeros(2, 1).copy_(v),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_fill_and_copy_are_recorded_as_pytorch(name):
    def program(T):
        v0 = _leaf(T)
        w = T.tensor(0.5, dtype=T.float64, requires_grad=True)
        v1 = RECORDED[name](T, v0, w)
        out = [("grad_fn", _name(v1)), ("requires_grad", v1.requires_grad),
               ("next", [None if f is None else type(f).__name__
                         for f, _ in v1.grad_fn.next_functions] if v1.grad_fn else None)]
        (v1 * v1).sum().backward()
        return out + [("v0", v0.grad), ("w", w.grad)]
    _compare(program)


# --- 2. views under no_grad; t() on 0-d/1-d -------------------------------------------------
VIEWS = {
    "flatten 1-d": lambda v: v.flatten(), "flatten 2-d": lambda v: v.reshape(2, 1).flatten(),
    "expand_as": lambda v: v.expand_as(v), "transpose(0, 0)": lambda v: v.transpose(0, 0),
    "t 1-d": lambda v: v.t(), "t 0-d": lambda v: v.sum().t(), "T 1-d": lambda v: v.T,
    "view same": lambda v: v.view(2), "split whole": lambda v: v.split(5)[0],
    "chunk whole": lambda v: v.chunk(1)[0], "ellipsis": lambda v: v[...],
    "slice all": lambda v: v[:], "select": lambda v: v[0], "unsqueeze": lambda v: v[None],
    "unbind": lambda v: v.unbind()[0], "narrow": lambda v: v.narrow(0, 0, 1),
    "permute": lambda v: v.permute(0), "squeeze": lambda v: v.squeeze(),
    "flip (a copy)": lambda v: v.flip(0), "index with a list (a copy)": lambda v: v[[0, 1]],
}


@pytest.mark.parametrize("mode", ["no_grad", "grad"])
@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_require_grad_as_pytorchs(name, mode):
    def program(T):
        v0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)
        base = v0 * 1
        with T.set_grad_enabled(mode == "grad"):
            leaf_view, view = VIEWS[name](v0), VIEWS[name](base)
        out = []
        for key, t in (("of a leaf", leaf_view), ("of a non-leaf", view)):
            out += [(key + ": requires_grad", t.requires_grad), (key + ": is_leaf", t.is_leaf),
                    (key + ": grad_fn", _name(t))]
        if view.requires_grad:
            (view * 2).sum().backward()
            out.append(("grad", v0.grad))
        return out
    _compare(program)


def test_a_no_grad_view_changed_in_place_with_grad_on_is_refused():
    def program(T):
        v0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)
        with T.no_grad():
            y = v0.view(2)
        y.mul_(2)
        return [("value", y.detach())]
    _compare(program)


# --- 3. grad_fn names -----------------------------------------------------------------------
NAMES = {
    "remainder(a, b)": lambda T, a, b: T.remainder(a, b), "a % b": lambda T, a, b: a % b,
    "a % 2": lambda T, a, b: a % 2, "2 % a": lambda T, a, b: 2 % a,
    "fmod(a, b)": lambda T, a, b: T.fmod(a, b), "fmod(a, 2)": lambda T, a, b: T.fmod(a, 2.0),
    "lerp tensor weight": lambda T, a, b: T.lerp(a, b, T.tensor([0.3, 0.4])),
    "lerp 0-d weight": lambda T, a, b: T.lerp(a, b, T.tensor(0.3)),
    "lerp number weight": lambda T, a, b: T.lerp(a, b, 0.3),
    "a // b": lambda T, a, b: a // b, "a // 2": lambda T, a, b: a // 2,
    "2 // a": lambda T, a, b: 2 // a, "floor_divide": lambda T, a, b: T.floor_divide(a, b),
    "div floor": lambda T, a, b: T.div(a, b, rounding_mode="floor"),
    "a[..., :1]": lambda T, a, b: a[..., :1], "a[..., :2]": lambda T, a, b: a[..., :2],
    "a[None][..., :1] of 0-d": lambda T, a, b: a[0][None][..., :1],
    "m[:, :]": lambda T, a, b: a[None][:, :], "m[0, :]": lambda T, a, b: a[None][0, :],
    "m[None, :]": lambda T, a, b: a[None][None, :],
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_grad_fn_names_are_pytorchs(name):
    def program(T):
        a = T.tensor([1.5, -2.5], requires_grad=True)
        b = T.tensor([0.7, 1.1], requires_grad=True)
        out = NAMES[name](T, a, b)
        result = [("grad_fn", _name(out)), ("value", out.detach())]
        out.sum().backward()  # PyTorch's error where it has no derivative
        return result + [("grad", a.grad)]
    _compare(program)


def test_setitem_and_inplace_floor_divide_names():
    def program(T):
        a = T.tensor([1.5, -2.5], requires_grad=True)
        v = a * 1
        v[..., :1] = 3.0
        w = a * 1
        w //= 2
        return [("setitem", _name(v)), ("ifloordiv", _name(w))]
    _compare(program)
