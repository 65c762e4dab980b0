"""Old names real programs still use, against PyTorch: torch.autograd.Variable (a detached
tensor requiring grad as asked; every tensor an instance; its errors and the volatile
warning) and lr_scheduler._LRScheduler as a custom scheduler's base."""

from __future__ import annotations

import warnings

import pytest
import torch

import remotegrad as rg


def _variables(lib):
    V = lib.autograd.Variable
    x = lib.ones(2)
    y = lib.ones(2, requires_grad=True) * 3
    v, w, vy, wy, empty = V(x), V(x, requires_grad=True), V(y), V(y, True), V()
    return [(t is x, t.requires_grad, t.is_leaf, t.grad_fn, t.tolist())
            for t in (v, w, vy, wy)] + [
        (tuple(empty.shape), isinstance(x, V), isinstance(y, V), isinstance(3, V),
         x.requires_grad)]


def test_variable_matches_pytorch():
    assert _variables(rg) == _variables(torch)


def test_variable_errors_and_warning_match_pytorch():
    found = []
    for lib in (rg, torch):
        with pytest.raises(TypeError) as e:
            lib.autograd.Variable([1.0, 2.0])
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            lib.autograd.Variable(lib.ones(1), volatile=True)
        found.append((str(e.value), [str(w.message) for w in seen]))
    assert found[0] == found[1]


def test_old_scheduler_base_name_matches_pytorch():
    found = []
    for lib in (rg, torch):
        class Halving(lib.optim.lr_scheduler._LRScheduler):
            def get_lr(self):
                return [base * 0.5 ** self.last_epoch for base in self.base_lrs]

        opt = lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.8)
        sched = Halving(opt)
        lrs = []
        for _ in range(4):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        found.append((lrs, isinstance(sched, lib.optim.lr_scheduler.LRScheduler)))
    assert found[0] == found[1]
