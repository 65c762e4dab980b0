"""The last view-related differences the differential tester's view programs found (issue
12): create_graph gradients through in-place changes of views and of their bases (their
grad_fn, requires_grad and values), and index_put_ into an expanded tensor. Each program
runs under PyTorch and remotegrad (the repr shows the values, grad_fn and requires_grad)."""

from __future__ import annotations

import pathlib
import sys

import pytest
import torch

import remotegrad as rg

from test_refused_views import _run

X0 = "v0 = T.tensor(0.13, requires_grad=True)"

PROGRAMS = {
    # pow's rule guards y == 0 with a where under clone's cast: the name was WhereBackward0
    "clone().pow_(2), create_graph": [
        X0, "v1 = v0.clone()", "v1.pow_(2)",
        "?T.autograd.grad(v1.sum(), v0, create_graph=True)[0]"],
    "view(-1) of a root changed by pow_, create_graph": [
        X0, "v1 = v0.clone()", "v2 = v1.view(-1)", "v1.pow_(2)",
        "?T.autograd.grad(v2.sum(), v0, create_graph=True)[0]"],
    # PyTorch's as_strided_backward of an empty view returns constant zeros of the base
    "empty regenerated view, create_graph": [
        X0, "v1 = T.tensor([0.13], requires_grad=True)", "v2 = v1.clone()", "v3 = v2.t()",
        "v3.clamp_(min=-0.5)", "v4 = v3[1:]", "v4 -= v0", "v5 = T.exp(v4)",
        "gs = T.autograd.grad(v5.sum(), [v0, v1, v5], create_graph=True, "
        "materialize_grads=True)", "?gs[0]", "?gs[1]", "?gs[2]", "?gs[0].is_leaf",
        "?T.autograd.grad(v5.sum(), [v0, v1], allow_unused=True)[0]"],
    "empty view regenerated after its base changed": [
        X0, "x = T.ones(1, 2, requires_grad=True)", "c = x.clone()", "w = c[1:]",
        "c.mul_(v0)", "?w.grad_fn", "gs = T.autograd.grad(T.exp(w).sum(), [x, v0, c], "
        "create_graph=True)", "?gs[0]", "?gs[1]", "?gs[2]",
        "?T.autograd.grad((w * 2).sum() + c.sum(), c, create_graph=True)[0]"],
    # PyTorch's setitem applies a 0-d mask (or True/False) to x.unsqueeze(-1), a view
    "0-d mask setitem": [
        X0, "v1 = v0.clone()", "v2 = v1.unsqueeze(0)", "v1[v1 > 0] = 0.5", "?v1", "?v2",
        "v3 = v0.clone()", "v3[v3 < 0] = T.tensor(0.5)", "?v3", "v4 = v0 * T.ones(2)",
        "v4[T.tensor(True)] = 0.5", "?v4", "v4[True] = 1.5", "?v4",
        "?T.autograd.grad((v1 + v4).sum(), v0)"],
    # x op= y checks y's overlap with x first, as x.sub_(y) does
    "x -= y of a view and its base, under no_grad": [
        X0, "v1 = v0.unsqueeze(0)", "with T.no_grad(): v1 -= v0", "?v0",
        "v2 = T.ones(2, 3)", "v3 = v2.t()", "v3 += v2", "?v2"],
    # x[key] = number where x repeats elements: PyTorch fills the region with a 0-d tensor,
    # a copy_, refused where the region repeats elements (x.fill_(number) is not)
    "number into an expanded tensor": [
        X0, "v1 = T.tensor([0.13], requires_grad=True).clone()", "v2 = v1.expand(2, 1)",
        "v2[..., :1] = 0.5", "v2[...] = 0.5", "v2[0] = 0.5", "?v1", "?v2", "v2.fill_(1.5)",
        "?v1", "v3 = T.zeros(3, dtype=T.int64).expand(2, 3)", "v3[:, 0] = 2", "v3[1] = 7",
        "?v3", "v4 = T.zeros(2, dtype=T.float16).expand(3, 2)", "v4[0] = 70000.0", "?v4",
        "v5 = T.zeros(2, dtype=T.bool).expand(2, 2)", "v5[1] = 3", "?v5"],
    # diagonal is composed on the client: the refusal of a view's history comes first there
    # too (before its dim checks), with grad mode on
    "diagonal of a refused no_grad view": [
        "v0 = T.tensor([0.13], requires_grad=True)", "with T.no_grad(): v1 = v0.select(0, -1)",
        "with T.no_grad(): v1.exp_()", "v2 = v1.diagonal()", "v2 = v1.diagonal(0, 0, 0)",
        "with T.no_grad(): v2 = v1.diagonal()", "with T.no_grad(): v2 = v1.diagonal(0, 0, 0)"],
    # unbind of a 0-d piece: the refusal of its history first (grad mode on), then the dim
    "unbind of a refused 0-d unbind piece": [
        "v0 = T.tensor([0.13], requires_grad=True)", "v1 = v0.unbind(0)[0]",
        "with T.no_grad(): v0.pow_(2)", "v2 = v1.unbind(0)[0]", "v2 = v1.unbind(1)",
        "with T.no_grad(): v2 = v1.unbind(0)", "with T.no_grad(): v2 = v1.unbind(1)",
        "v3 = T.ones(2).unbind(-2)", "v3 = T.ones(1, 2).unbind(2)"],
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_as_pytorch(name):
    steps = PROGRAMS[name]
    assert _run(rg, steps) == _run(torch, steps)


# PyTorch's index_put_(accumulate=True) into a tensor that repeats elements (expand) warns
# and adds each indexed element's value into its memory location (it was refused with the
# overlap error)
ACCUMULATE = {
    "into an expanded temporary": [
        "x = T.zeros(3).expand(2, 3)",
        "?x.index_put_((T.tensor([0, 1]),), T.ones(3), accumulate=True)", "?x.sum()"],
    "into an expanded tensor, through its base": [
        "b = T.zeros(3)", "x = b.expand(2, 3)",
        "x.index_put_((T.tensor([0, 1, 1]), T.tensor([1, 2, 2])), T.tensor([5., 7., 1.]), "
        "accumulate=True)", "?b", "?x", "x.index_put_((x > -1,), T.tensor(1.), "
        "accumulate=True)", "?b", "?x", "x.index_put_((x > 7,), T.tensor(1.), "
        "accumulate=True)", "?b"],
    "integers, a 0-d base": [
        "b = T.tensor(3)", "x = b.expand(4)",
        "x.index_put_((T.tensor([0, 2]),), T.tensor([1, 2]), accumulate=True)", "?b",
        "?x.index_put((T.tensor([1]),), T.tensor(5), accumulate=True)"],
    "with grad": [
        X0, "v1 = v0.clone()", "v2 = v1.expand(2)",
        "v2.index_put_((T.tensor([0]),), T.tensor(1.), accumulate=True)", "?v1", "?v2",
        "?T.autograd.grad(v2.sum(), v0)"],
}


@pytest.mark.parametrize("name", list(ACCUMULATE))
def test_index_put_accumulate_into_expanded(name):
    steps = ACCUMULATE[name]
    with pytest.warns(UserWarning, match="index_put_ on expanded tensors"):
        theirs = _run(torch, steps)
    with pytest.warns(UserWarning, match="index_put_ on expanded tensors"):
        assert _run(rg, steps) == theirs


def _gradient(T, change: str):
    x = T.tensor([[0.5, -1.5, 2.0]], requires_grad=True)
    c = x.clone()
    v = (x if "x." in change else c).movedim(0, -1)
    exec(change, {"v": v, "c": c, "x": x, "T": T})
    return T.autograd.grad(T.exp(v).sum(), x, create_graph=True)[0]


# difftest's KNOWN copy_slices and as_strided, pinned (a change through which the names
# become PyTorch's shows here): (the change, remotegrad's name, PyTorch's name)
KNOWN_NAMES = [("v.sigmoid_()", "AddBackward0", "CopySlices"),
               ("with T.no_grad(): x.mul_(2)", "PermuteBackward0", "AsStridedBackward0")]


@pytest.mark.parametrize("change, ours, theirs", KNOWN_NAMES)
def test_known_names_through_views(change, ours, theirs):
    mine, reference = _gradient(rg, change), _gradient(torch, change)
    assert mine.requires_grad and reference.requires_grad
    assert mine.reshape(-1).tolist() == pytest.approx(reference.reshape(-1).tolist(), rel=1e-6)
    assert (type(mine.grad_fn).__name__, type(reference.grad_fn).__name__) == (ours, theirs)


def _unbind_gradient(T):
    x = T.tensor([0.13, 0.2], requires_grad=True)
    return T.autograd.grad(T.exp(x.unbind(0)[0]).sum(), x, create_graph=True)[0]


def test_unbind_gradient_name_is_known():
    """The create_graph gradient through an unbind piece: PyTorch's StackBackward0, the
    catalog's IndexBackwardBackward0 (same values): difftest's KNOWN unbind_backward."""
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "differential"))
    import difftest

    mine, reference = _unbind_gradient(rg), _unbind_gradient(torch)
    assert mine.requires_grad and reference.requires_grad
    assert mine.tolist() == pytest.approx(reference.tolist(), rel=1e-6)
    ours, theirs = type(mine.grad_fn).__name__, type(reference.grad_fn).__name__
    assert (ours, theirs) == ("IndexBackwardBackward0", "StackBackward0")
    assert any(k.matches("grad_fn", theirs, ours, source="v1 = v0.unbind(0)[0]",
                         create_graph=True, through_grad=False) for k in difftest.KNOWN)


def _saved_view_second(T, view: str, op: str):
    """An op that saves its result changes a view of a clone in place; the loss is of the
    clone (its base), not the view. PyTorch's saved result is the view after the op (its
    grad_fn regenerated from the base): the second gradient reaches it (not None)."""
    x = T.tensor([0.47, -0.83, -0.78], requires_grad=True)
    c = x.clone()
    v = eval(view, {"c": c})
    getattr(v, op + "_")()
    g = T.autograd.grad(c.sum() + x.sum(), [x, v], create_graph=True, allow_unused=True,
                        materialize_grads=True)
    return T.autograd.grad(g[0].sin().sum() + (g[1] * g[1]).sum(), [x, v], allow_unused=True)


@pytest.mark.parametrize("view", ["c.movedim(0, -1)", "c[None]", "c[:]"])
@pytest.mark.parametrize("op", ["sigmoid", "exp", "tanh"])
def test_saved_view_result_through_base(view, op):
    mine, reference = _saved_view_second(rg, view, op), _saved_view_second(torch, view, op)
    for a, b in zip(mine, reference):
        assert (a is None) == (b is None)
        assert a.reshape(-1).tolist() == pytest.approx(b.reshape(-1).tolist(), rel=1e-5,
                                                       abs=1e-6)


def _inplace_on_regenerated_empty(T, view: str, op: str):
    """An in-place op on an empty view regenerated after its base changed: PyTorch's
    CopySlices gives the op the base's gradient directly (not the view's AsStridedBackward0
    zeros), so a create_graph gradient through a saved result or operand requires grad."""
    v0 = T.zeros((0,), dtype=T.float32, requires_grad=True)
    y = T.zeros((0, 1), requires_grad=True)
    v1 = v0.clone()
    v2 = eval(view, {"v1": v1})
    v2.neg_()
    v3 = v2.transpose(0, -1)  # noqa: F841  (a view of it, regenerated next)
    eval(op, {"v2": v2, "y": y})
    out = []
    for loss in (v1.sum(), v2.sum(), v0.sum(), (v2 * 2).sum() + v1.sum()):
        gs = T.autograd.grad(loss, [v0, y], create_graph=True, allow_unused=True)
        out.append([None if g is None else (g.requires_grad, g.grad_fn is None,
                                            tuple(g.shape)) for g in gs])
    return out


@pytest.mark.parametrize("view", ["v1.unsqueeze(-1)", "v1[:]", "v1.unsqueeze(0).T"])
@pytest.mark.parametrize("op", ["v2.exp_()", "v2.sigmoid_()", "v2.mul_(y.reshape(v2.shape))"])
def test_inplace_on_regenerated_empty_view(view, op):
    assert _inplace_on_regenerated_empty(rg, view, op) == \
        _inplace_on_regenerated_empty(torch, view, op)


def _twin_of_saved_result(T, op: str):
    """The same op out of place before its in-place form on a view (t = v.tanh(); v.tanh_()):
    two tensors of one expression. Only the in-place one's saved result is the view; t's
    rule reads t, so the second gradient with respect to the view counts the in-place
    op's use only (the engine shares identical expressions: the result is kept apart)."""
    x = T.tensor([0.3, -0.7, 1.2], requires_grad=True)
    y = x * 1
    v = y[:2]
    t = getattr(v, op)()
    getattr(v, op + "_")()
    g, = T.autograd.grad((t * T.tensor([2., 3.])).sum() + y.sum(), x, create_graph=True)
    return g, T.autograd.grad(g.sum(), [v, x])  # (t as a wrt would be kept apart)


@pytest.mark.parametrize("op", ["tanh", "exp", "sigmoid"])
def test_twin_of_saved_result_reads_its_own(op):
    for a, b in zip(_twin_of_saved_result(rg, op), _twin_of_saved_result(torch, op)):
        for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert p.tolist() == pytest.approx(q.tolist(), rel=1e-5, abs=1e-6)


def _copy_of_own_detach_then_inplace(T, view: bool):
    """x.copy_(x.detach()) cuts x's history (CopyBackwards gives it zeros); an in-place op
    after it keeps that cut, whether or not x has views (an empty regenerated view's
    constant is another node of the same form, which the op reads past)."""
    a = T.tensor([0.3, -0.7], requires_grad=True)
    x = a * 1
    w = x[:1] if view else None  # noqa: F841
    x.copy_(x.detach())
    x.exp_()
    x.sum().backward()
    return a.grad.tolist()


@pytest.mark.parametrize("view", [False, True])
def test_copy_of_own_detach_then_inplace_keeps_the_cut(view):
    assert _copy_of_own_detach_then_inplace(rg, view) == \
        _copy_of_own_detach_then_inplace(torch, view)


def _saved_view_changed_after(T, view: str, op: str, change: str):
    """An op saved its result, a view (tanh_ on c[:]); the view or its base then changes
    in place: PyTorch's backward through the op refuses it (the view's version moved)."""
    x = T.tensor([0.47, -0.83, -0.78], requires_grad=True)
    c = x.clone()
    v = eval(view, {"c": c})
    getattr(v, op + "_")()
    exec(change, {"c": c, "v": v})
    try:
        return T.autograd.grad(c.sum(), x)[0].tolist()
    except RuntimeError as e:
        return str(e)


@pytest.mark.parametrize("view", ["c[:]", "c.movedim(0, -1)"])
@pytest.mark.parametrize("op", ["tanh", "exp"])
@pytest.mark.parametrize("change", ["v.mul_(2)", "v.exp_()", "c.add_(1)", "c[:1].zero_()", "pass"])
def test_saved_view_changed_after_is_refused(view, op, change):
    mine = _saved_view_changed_after(rg, view, op, change)
    theirs = _saved_view_changed_after(torch, view, op, change)
    if isinstance(theirs, str) and change.startswith("c"):  # PyTorch names the view's
        # AsStrided regenerated lazily, ours the op (the view is refreshed at the change)
        assert mine == theirs.replace("output 0 of AsStrided", f"output 0 of {op.title()}")
    elif isinstance(theirs, str):
        assert mine == theirs
    else:
        assert mine == pytest.approx(theirs, rel=1e-6)
