"""The schedulers' step-order warnings as PyTorch's: scheduler.step() before any
optimizer.step() ("Detected call of ..."), an optimiser whose step was replaced after the
scheduler wrapped it ("Seems like ... overridden"), none in the right order, only on the
first step, none from the schedules with a step of their own (warm restarts, plateau), and
an optimiser still pickles once a scheduler wrapped its step."""

from __future__ import annotations

import io
import pickle
import warnings

import pytest
import torch

import remotegrad as rg

PROGRAMS = {
    "before": "s = S.StepLR(o, 2); s.step(); s.step()",
    "right_order": "s = S.StepLR(o, 2); o.step(); s.step(); o.step(); s.step()",
    "overridden": "s = S.ExponentialLR(o, 0.9); o.step = lambda closure=None: None; s.step()",
    "two_schedulers": "a = S.ExponentialLR(o, 0.9); b = S.StepLR(o, 3); o.step(); a.step(); "
                      "b.step()",
    "one_cycle": "s = S.OneCycleLR(o, 0.1, total_steps=5); s.step()",
    "warm_restarts": "s = S.CosineAnnealingWarmRestarts(o, 3); s.step()",
    "plateau": "s = S.ReduceLROnPlateau(o); s.step(1.0)",
    "sequential": "s = S.SequentialLR(o, [S.ConstantLR(o), S.ExponentialLR(o, 0.5)], [2]); "
                  "s.step()",
    "chained": "s = S.ChainedScheduler([S.ConstantLR(o), S.ExponentialLR(o, 0.5)]); s.step()",
}


def _warnings(lib, code):
    o = lib.optim.SGD([lib.nn.Parameter(lib.ones(2))], lr=0.1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        exec(code, {"S": lib.optim.lr_scheduler, "o": o})
    return [str(w.message) for w in seen if "step()" in str(w.message)]


@pytest.mark.parametrize("name", PROGRAMS)
def test_warnings_match_pytorch(name):
    assert _warnings(rg, PROGRAMS[name]) == _warnings(torch, PROGRAMS[name])


def test_the_warning_points_at_the_programs_line():
    o = rg.optim.SGD([rg.nn.Parameter(rg.ones(2))], lr=0.1)
    s = rg.optim.lr_scheduler.StepLR(o, 2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        s.step()
    assert seen[0].filename == __file__


def test_an_optimizer_pickles_after_a_scheduler_wrapped_it():
    o = rg.optim.SGD([rg.nn.Parameter(rg.ones(2))], lr=0.1)
    rg.optim.lr_scheduler.StepLR(o, 2)
    o.step()
    back = pickle.loads(pickle.dumps(o))
    assert not hasattr(back.step, "_wrapped_by_lr_sched") and "_opt_called" not in vars(back)
    rg.save(o, io.BytesIO())


SCHEDULES = [
    "S.StepLR(o, 2)", "S.ExponentialLR(o, 0.5)", "S.CosineAnnealingLR(o, 5)",
    "S.LambdaLR(o, lambda e: 1.0)", "S.CosineAnnealingWarmRestarts(o, 3)",
    "S.OneCycleLR(o, 0.1, total_steps=4)", "S.CyclicLR(o, 0.01, 0.1)", "S.LinearLR(o)",
    "S.ConstantLR(o)", "S.MultiStepLR(o, [1])", "S.PolynomialLR(o)",
    "S.MultiplicativeLR(o, lambda e: 1.0)",
]


@pytest.mark.parametrize("make", SCHEDULES)
def test_get_lr_outside_step_warns_as_pytorchs(make):
    """PyTorch's own schedules warn when get_lr() is called other than by step(); a
    program's own subclass, and step() itself, do not."""
    found = []
    for lib in (rg, torch):
        o = lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1)
        S = lib.optim.lr_scheduler

        class Mine(S.LRScheduler):
            def get_lr(self):
                return [0.5]

        scheduler, mine = eval(make, {"S": S, "o": o}), Mine(o)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            scheduler.get_lr()
            mine.get_lr()
            o.step()
            scheduler.step()
        found.append([str(w.message) for w in seen])
    assert found[0] == found[1] and len(found[0]) == 1
