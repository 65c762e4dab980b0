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
