"""Views whose history PyTorch refuses once their base changed in place (issue 12, the
differential tester's no_grad_views and multi_view gates): a view made under no_grad, a
split/chunk/unbind piece made with grad on. Each program runs under PyTorch and
remotegrad; what each step gives (a value's repr, an attribute, or the exception class)
must be the same."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg


def _run(T, steps):
    env = {"T": T}
    out = []
    for step in steps:
        try:
            if step.startswith("?"):
                r = eval(step[1:], env)
                plain = r is None or isinstance(r, (bool, torch.Tensor, rg.Tensor))
                out.append(repr(r) if plain else type(r).__name__)
            else:
                exec(step, env)
                out.append("ok")
        except Exception as e:  # noqa: BLE001  (compared with PyTorch's)
            out.append(f"raises {_builtin(e)}")
    return out


def _builtin(e) -> str:
    for cls in type(e).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(e).__name__


SPLIT_BASE = ["x = T.tensor([0.13, 0.5], requires_grad=True)", "b = x.clone()"]
NO_GRAD_LEAF = ["x = T.tensor([0.13, 0.5], requires_grad=True)"]

PROGRAMS = {
    "split piece, base changed": SPLIT_BASE + [
        "a = b.split(1)[-1]", "b.tanh_()", "?a.is_leaf", "?a.grad_fn", "?a.requires_grad",
        "?a", "?a.sum()", "?(a > 0)", "?a.detach()",
        "with T.no_grad(): c = a * 2", "?c"],
    "unbind piece, base changed": SPLIT_BASE + [
        "a = b.unbind(0)[0]", "b.pow_(2)", "?a.is_leaf", "?a.grad_fn", "?a"],
    "chunk piece, another piece changed under no_grad": SPLIT_BASE + [
        "a, c = b.chunk(2)", "with T.no_grad(): c.mul_(3)", "?a.is_leaf", "?a.grad_fn",
        "?b.grad_fn"],
    "split piece untouched": SPLIT_BASE + [
        "a = b.split(1)[0]", "?a.is_leaf", "?a.grad_fn", "?a * 2"],
    "piece of a tensor without grad given one with grad": [
        "x = T.ones(4)", "w = T.ones(2, requires_grad=True)", "v = x.chunk(2)[0]",
        "v.addcmul_(w, w)", "?v", "?x", "v.mul_(w)", "v[...] = w", "v.copy_(w)",
        "v += w", "v.mul_(2)", "?x"],
    "piece without grad, base given grad": [
        "x = T.ones(4)", "w = T.ones(4, requires_grad=True)", "v = x.chunk(2)[0]",
        "x.mul_(w)", "?v.grad_fn", "?v.requires_grad", "?v"],
    "no_grad view, base changed under no_grad": NO_GRAD_LEAF + [
        "with T.no_grad(): v = x.unsqueeze(0)", "with T.no_grad(): x[x > 0] = 0.5",
        "?v.is_leaf", "?v.grad_fn", "?v.requires_grad", "?v", "?v + 1", "?v.long()",
        "with T.no_grad(): c = v + 1", "?c"],
    "no_grad view changed itself under no_grad": NO_GRAD_LEAF + [
        "with T.no_grad(): v = x.permute(0)", "with T.no_grad(): v.pow_(2)",
        "?v.is_leaf", "?v.grad_fn", "?x.is_leaf", "?x"],
    "no_grad view of a non-leaf": NO_GRAD_LEAF + [
        "b = x * 1", "with T.no_grad(): v = b[:1]", "b.mul_(2)", "?v.is_leaf",
        "?v * 1", "?v.grad_fn"],
    "no_grad view of a tensor without grad, base given grad": [
        "y = T.ones(4)", "w = T.ones(4, requires_grad=True)",
        "with T.no_grad(): v = y[:2]", "y.mul_(w)", "?v.grad_fn", "?v.requires_grad",
        "?v * 1"],
    "no_grad view of a tensor without grad, changed without grad": [
        "y = T.ones(4)", "with T.no_grad(): v = y[:2]", "y.mul_(2)", "?v.grad_fn",
        "?v.is_leaf", "?v * 1"],
    "no_grad view given grad in place": [
        "y = T.ones(4)", "w = T.ones(2, requires_grad=True)",
        "with T.no_grad(): v = y[:2]", "v.mul_(w)", "?y"],
    "view of a no_grad view": NO_GRAD_LEAF + [
        "b = x * 1", "with T.no_grad(): a = b[:2]", "c = a[:1]", "?c.grad_fn",
        "with T.no_grad(): b.mul_(2)", "?c.grad_fn", "?a.grad_fn", "?c.is_leaf"],
    "view of a split piece": SPLIT_BASE + [
        "p = b.split(1)[0]", "q = p[:1]", "?q.grad_fn", "b.mul_(2)", "?q.grad_fn",
        "q.mul_(2)"],
    "split under no_grad": SPLIT_BASE + [
        "with T.no_grad(): p = b.split(1)[0]", "b.mul_(2)", "?p.grad_fn",
        "with T.no_grad(): p = b.split(1)[0]", "p.mul_(2)"],
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_refused_history_as_pytorch(name):
    steps = PROGRAMS[name]
    assert _run(rg, steps) == _run(torch, steps)


MORE = {
    "autograd over a refused piece": SPLIT_BASE + [
        "a = b.split(1)[-1]", "b.tanh_()", "?T.autograd.grad(x.sum(), [x, a], allow_unused=True)",
        "?T.autograd.grad(a.sum(), x)", "?T.autograd.backward(a, T.ones(1))"],
    "autograd over a refused no_grad view": [
        "x = T.tensor(0.38, requires_grad=True)", "with T.no_grad(): v = x[None]",
        "with T.no_grad(): v.div_(2)", "?T.autograd.grad(x.sum(), [x, v], allow_unused=True)"],
    "the refusal comes before the op's own checks": SPLIT_BASE + [
        "a = b.unbind(-1)[0]", "b.neg_()", "?a.sum(1, keepdim=True)",
        "with T.no_grad(): a.sum(1, keepdim=True)"],
}


@pytest.mark.parametrize("name", list(MORE))
def test_refused_history_in_autograd(name):
    steps = MORE[name]
    assert _run(rg, steps) == _run(torch, steps)
