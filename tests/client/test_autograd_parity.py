"""What autograd.grad / backward run, check and free, as PyTorch 2.13's engine does (found
apart by the differential tester): only the functions between the outputs and the
requested inputs run, so only their saved tensors are checked for in-place changes and
freed; a no_grad view of a leaf is an input whose gradient is unused; a Python number put
into an integer tensor is cast to its dtype. Each program runs on PyTorch and remotegrad."""

from __future__ import annotations

import warnings

import pytest
import torch

import remotegrad as rg
from torchref import same_runs


def _run(T, program):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return program(T)
    except RuntimeError as e:
        return [("error", str(e).split(" Hint:")[0])]


def _compare(program):
    same_runs(_run(rg, program), _run(torch, program), rtol=1e-6, atol=1e-6)


def _grads(gs):
    out = []
    for i, g in enumerate(gs):
        out.append((f"none{i}", g is None))
        if g is not None:
            out += [(f"grad{i}", g.detach()), (f"requires_grad{i}", g.requires_grad)]
    return out


def _leaf(T, values=(0.13, -0.2)):
    return T.tensor(list(values), requires_grad=True)


# --- 1. a saved tensor changed in place matters only where the engine runs its node -------
def _relu_div_unreachable(T):
    v0 = T.tensor(0.13, requires_grad=True)
    v2 = T.relu(v0)
    v2.div_(v0.abs() + 0.5)  # ReluBackward0's saved result is now stale
    v4 = T.neg(v0)
    return _grads(T.autograd.grad(T.erf(v2).sum(), v4, allow_unused=True,
                                  materialize_grads=True))


def _maximum_then_no_grad_zero(T):
    v0, v1 = _leaf(T), _leaf(T, (0.5, 0.1))
    v2 = T.maximum(v0, v1)
    with T.no_grad():
        v0.zero_()  # MaximumBackward0 saved v0; grad wrt v2 does not run it
    return _grads(T.autograd.grad(v2.sum(), v2))


def _captured_root(T):
    v0, v1 = _leaf(T), _leaf(T, (0.5, 0.1))
    v2 = T.maximum(v0, v1)
    with T.no_grad():
        v0.zero_()
    return _grads(T.autograd.grad(v2, v2, T.ones(2)))  # the root itself is only captured


def _unreachable_input_root_modified(T):
    v0, v1 = _leaf(T), _leaf(T, (0.5, 0.1))
    v2 = v0.exp()
    with T.no_grad():
        v2.mul_(2)
    return _grads(T.autograd.grad(v2, v1, T.ones(2), allow_unused=True))


def _tan_div_below_the_input(T):
    F = T.nn.functional
    v0 = _leaf(T)
    v1 = T.tan(v0)
    v1.div_(v0.abs() + 0.5)
    v2 = v0 + v1
    v4 = F.mse_loss(v2, v0, reduction="none")
    gs = T.autograd.grad((v4 * v4).sum(), v2, create_graph=True, allow_unused=True,
                         materialize_grads=True)
    return _grads(gs)


def _modified_on_the_path_still_fails(T):
    v0, v1 = _leaf(T), _leaf(T, (0.5, 0.1))
    v2 = T.maximum(v0, v1)
    v3 = v2 * 2
    with T.no_grad():
        v0.zero_()
    return _grads(T.autograd.grad([v3, v1 * 2], [v2, v1], [T.ones(2), T.ones(2)]))


def _backward_inputs_runs_the_input(T):
    v0, v1 = _leaf(T), _leaf(T, (0.5, 0.1))
    v2 = T.maximum(v0, v1)
    v3 = v2 * 2
    with T.no_grad():
        v0.zero_()
    v3.sum().backward(inputs=[v2])
    return [("grad", v2.grad)]


# --- 2. only the functions that ran are freed ------------------------------------------------
def _second_grad_below_the_first(T):
    v0 = _leaf(T)
    v2 = v0 * v0
    first = T.autograd.grad((v2 * v2).sum(), v2)
    return _grads(first) + _grads(T.autograd.grad(v2.sum(), [v0], create_graph=True))


def _shared_ancestry(T):
    v0 = _leaf(T)
    v1 = v0.exp()
    v3, v4 = v1 * v1, v1.sin()
    v5, = T.autograd.grad((v3 * v3).sum(), v3)
    v6, = T.autograd.grad(v4.sum(), v0)
    return [("v5", v5), ("v6", v6)]


def _second_grad_through_what_ran_fails(T):
    v0 = _leaf(T)
    v2 = v0.exp()
    v3 = v2 * v2
    T.autograd.grad(v3.sum(), v2)
    return _grads(T.autograd.grad(v3.sum(), v0))


def _backward_inputs_frees_above_only(T):
    v0 = _leaf(T)
    v2 = v0.exp()
    v3, v4 = v2 * v2, v2.sin()
    v3.sum().backward(inputs=[v3])
    return _grads(T.autograd.grad(v4.sum(), v0))


def _batched_frees_what_ran(T):
    v0 = _leaf(T)
    v2 = v0.exp()
    v3, v4 = v2 * v2, v2.sin()
    first = T.autograd.grad(v3, v2, T.eye(2), is_grads_batched=True)
    return _grads(first) + _grads(T.autograd.grad(v4.sum(), v0))


# --- 3. a no_grad view of a leaf is an input with an unused gradient --------------------------
def _no_grad_view_input(T):
    v0 = _leaf(T)
    with T.no_grad():
        v1 = v0[None]
    out = [("requires_grad", v1.requires_grad), ("is_leaf", v1.is_leaf)]
    return out + _grads(T.autograd.grad((v0 * 2).sum(), [v0, v1], allow_unused=True))


def _no_grad_view_input_materialized(T):
    v0 = _leaf(T)
    with T.no_grad():
        v1 = v0[1:]
    gs = T.autograd.grad(v1.sum(), [v0, v1], create_graph=True, allow_unused=True,
                         materialize_grads=True)
    return _grads(gs)


def _no_grad_view_input_not_allowed_unused(T):
    v0 = _leaf(T)
    with T.no_grad():
        v1 = v0[None]
    return _grads(T.autograd.grad((v1 * 2).sum(), [v1]))


# --- 6. a leaf changed in place under no_grad after a graph used it: one AccumulateGrad ------
def _leaf_changed_after_use(T):
    v0 = T.tensor(0.13, requires_grad=True)
    v2 = T.fmod(v0, 2)
    with T.no_grad():
        v0.clamp_(min=-0.5)
    return _grads(T.autograd.grad(v2.sum(), [v0], allow_unused=True))


def _leaf_used_before_and_after(T):
    v0 = T.tensor(0.13, requires_grad=True)
    v2 = v0 * 2
    with T.no_grad():
        v0.add_(1)
    v0.register_hook(lambda g: g * 10)
    v3 = v0 * v0
    return _grads(T.autograd.grad((v2 + v3).sum(), [v0], create_graph=True))


def _leaf_saved_before_the_change_fails(T):
    v0 = T.tensor(0.13, requires_grad=True)
    v2 = v0 * v0
    with T.no_grad():
        v0.add_(1)
    return _grads(T.autograd.grad((v2 + v0 * v0).sum(), [v0]))


def _backward_inputs_of_a_changed_leaf(T):
    v0, v1 = T.tensor(0.13, requires_grad=True), T.tensor(0.5, requires_grad=True)
    v2 = v0 * 2
    with T.no_grad():
        v0.add_(1)
    (v2 + v0 * 3 + v1).sum().backward(inputs=[v0, v1 * 2])
    return [("grad", v0.grad), ("v1", v1.grad is None)]


def _backward_inputs_non_leaf_once(T):
    v0 = T.tensor([0.13], requires_grad=True)
    v2, v3 = v0 * 2, v0 * 4
    v2.retain_grad()
    y = (v2 * 3 + v3).sum()
    y.backward(inputs=[v2, v3], retain_graph=True)
    first = [("v2", v2.grad.clone()), ("v3", v3.grad.clone()), ("retains", v3.retains_grad)]
    y.backward(inputs=[v2, v0])
    return first + [("v2_again", v2.grad), ("v0", v0.grad)]


# --- 5. relu6 is hardtanh(0, 6): no gradient at either bound, a gradient that requires grad --
def _relu6(T):
    x = T.tensor([0.0, 6.0, 3.0, -1.0, 7.0, -0.0, float("nan")], requires_grad=True)
    y = T.nn.functional.relu6(x)
    g, = T.autograd.grad(y.sum(), x, create_graph=True)
    h, = T.autograd.grad(g.sum(), x)
    return [("value", y.detach()), ("signs", [str(v) for v in y.tolist()]),
            ("name", type(y.grad_fn).__name__),
            ("next", [type(f).__name__ for f, _ in y.grad_fn.next_functions]),
            ("grad", g.detach()), ("requires_grad", g.requires_grad), ("second", h),
            ("ints", T.nn.functional.relu6(T.tensor([-1, 3, 9])).tolist())]


def _relu6_inplace(T):
    x = T.tensor([0.0, 6.0, 3.0, -1.0], requires_grad=True)
    z = x * 1
    T.nn.functional.relu6(z, inplace=True)
    z.sum().backward()
    return [("name", type(z.grad_fn).__name__), ("value", z.detach()), ("grad", x.grad)]


PROGRAMS = {f.__name__.lstrip("_"): f for f in (
    _leaf_changed_after_use, _leaf_used_before_and_after, _leaf_saved_before_the_change_fails,
    _backward_inputs_of_a_changed_leaf, _backward_inputs_non_leaf_once, _relu6, _relu6_inplace,
    _relu_div_unreachable, _maximum_then_no_grad_zero, _captured_root,
    _unreachable_input_root_modified, _tan_div_below_the_input,
    _modified_on_the_path_still_fails, _backward_inputs_runs_the_input,
    _second_grad_below_the_first, _shared_ancestry, _second_grad_through_what_ran_fails,
    _backward_inputs_frees_above_only, _batched_frees_what_ran, _no_grad_view_input,
    _no_grad_view_input_materialized, _no_grad_view_input_not_allowed_unused)}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_what_the_engine_runs_is_pytorchs(name):
    _compare(PROGRAMS[name])


# --- 4. a Python number into an integer (or bool, or half) tensor --------------------------------
def _put(key, value, dtype="int64", data=(5, 6)):
    def program(T):
        v = T.tensor(list(data), dtype=getattr(T, dtype))
        v[key] = value
        return [("value", v.tolist())]
    return program


def _method(name, value, dtype="int64"):
    def program(T):
        v = T.zeros(2, dtype=getattr(T, dtype))
        if name == "masked_fill_":
            v.masked_fill_(T.tensor([True, False]), value)
        else:
            getattr(v, name)(value)
        return [("value", v.tolist())]
    return program


SCALARS = {
    "ellipsis_slice": lambda T: _put((Ellipsis, slice(None, 1)), 1e-3, data=(2,))(T),
    "ellipsis_slice_negative_zero": _put((Ellipsis, slice(None, 1)), -0.0, data=(2,)),
    "int_index": _put(0, -1.9), "slice": _put(slice(0, 2), 2.6, data=(5, 6, 7)),
    "list_index": _put([1], -8.9), "ellipsis": _put(Ellipsis, 2.5),
    "zero_dim": lambda T: (lambda v: (v.__setitem__((), 2.5), [("value", v.tolist())])[1])(
        T.tensor(5)),
    "mask": lambda T: _put(T.tensor([True, False]), 8.9)(T),
    "tensor_index": lambda T: _put(T.tensor([1]), 8.9)(T),
    "bool": _put(0, 0.5, dtype="bool", data=(True, False)),
    "uint8_overflow": _put(0, 255.9, dtype="uint8"),
    "uint8_negative": _put(0, -0.5, dtype="uint8"),
    "int8_overflow": _put(0, 300, dtype="int8"),
    "nan_into_int": _put(0, float("nan")),
    "half_unchecked": _put(0, 7e4, dtype="float16", data=(0.0, 1.0)),
    "float_overflow": _put(0, 1e300, dtype="float32", data=(0.0, 1.0)),
    "fill_truncates": _method("fill_", 2.7),
    "fill_overflow": _method("fill_", 300.5, "uint8"),
    "fill_nan": _method("fill_", float("nan")),
    "fill_half_overflow": _method("fill_", 7e4, "float16"),
    "masked_fill_truncates": _method("masked_fill_", -1.5),
    "masked_fill_overflow": _method("masked_fill_", 1e300, "float32"),
    "masked_fill_int8": _method("masked_fill_", 300, "int8"),
}


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_a_number_put_into_a_tensor_takes_its_dtype(name):
    _compare(SCALARS[name])
