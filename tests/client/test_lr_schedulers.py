"""Learning-rate schedulers against torch.optim.lr_scheduler: the learning rates (and the
momenta the cyclic ones set) step by step for several configurations, chained schedules,
SequentialLR over them, ReduceLROnPlateau driven by a metric, the closed forms of
step(epoch), state_dict contents and resuming from one, and the constructors' errors."""

from __future__ import annotations

import warnings

import pytest
import torch

import remotegrad as rg


def _close(a, b, rel=1e-12) -> bool:
    """Nested lists, tuples and dicts equal, their floats to rel."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(
            _close(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(
            _close(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=rel, abs=1e-15)
    return a == b


def _optimizer(lib, kind="sgd", groups=1):
    params = [{"params": [lib.nn.Parameter(lib.ones(2))], "lr": 0.1 * (i + 1)}
              for i in range(groups)]
    if kind == "adam":
        return lib.optim.Adam(params, lr=0.1)
    return lib.optim.SGD(params, lr=0.1, momentum=0.9)


def _hyper(opt):
    return [(g["lr"], g.get("momentum"), g.get("betas")) for g in opt.param_groups]


CASES = {
    "ConstantLR": ("sgd", 1, lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=3)),
    "ConstantLR_default": ("sgd", 2, lambda S, o: S.ConstantLR(o)),
    "LinearLR": ("sgd", 1, lambda S, o: S.LinearLR(o, start_factor=0.25, total_iters=4)),
    "LinearLR_decay": ("sgd", 2, lambda S, o: S.LinearLR(o, 1.0, 0.1, total_iters=6)),
    "MultiplicativeLR": ("sgd", 2, lambda S, o: S.MultiplicativeLR(o, lambda e: 0.9)),
    "MultiplicativeLR_per_group": ("sgd", 2, lambda S, o: S.MultiplicativeLR(
        o, [lambda e: 0.95, lambda e: 1 / (e + 1)])),
    "PolynomialLR": ("sgd", 1, lambda S, o: S.PolynomialLR(o, total_iters=6, power=2.0)),
    "PolynomialLR_linear": ("sgd", 2, lambda S, o: S.PolynomialLR(o)),
    "OneCycleLR": ("sgd", 1, lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=12)),
    "OneCycleLR_linear_three_phase": ("sgd", 2, lambda S, o: S.OneCycleLR(
        o, max_lr=[0.5, 1.0], epochs=3, steps_per_epoch=4, anneal_strategy="linear",
        three_phase=True, pct_start=0.25)),
    "OneCycleLR_adam": ("adam", 1, lambda S, o: S.OneCycleLR(o, max_lr=0.01, total_steps=12,
                                                             div_factor=10.0)),
    "CyclicLR": ("sgd", 1, lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3)),
    "CyclicLR_triangular2": ("sgd", 2, lambda S, o: S.CyclicLR(
        o, [0.01, 0.02], [0.1, 0.2], step_size_up=2, step_size_down=3, mode="triangular2")),
    "CyclicLR_exp_range_adam": ("adam", 1, lambda S, o: S.CyclicLR(
        o, 0.001, 0.01, step_size_up=2, mode="exp_range", gamma=0.9)),
    "CyclicLR_scale_fn": ("sgd", 1, lambda S, o: S.CyclicLR(
        o, 0.01, 0.1, step_size_up=2, scale_fn=lambda x: 0.5 ** x, scale_mode="iterations",
        cycle_momentum=False)),
    "Sequential_warmup_cosine": ("sgd", 1, lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.25, total_iters=3), S.CosineAnnealingLR(o, T_max=5)],
        milestones=[3])),
    "Sequential_three": ("sgd", 2, lambda S, o: S.SequentialLR(
        o, [S.ConstantLR(o, factor=0.5, total_iters=2), S.ExponentialLR(o, gamma=0.8),
            S.StepLR(o, step_size=2, gamma=0.5)], milestones=[2, 5])),
    "Sequential_polynomial": ("sgd", 1, lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, 0.1, total_iters=2), S.PolynomialLR(o, total_iters=4),
            S.MultiStepLR(o, [1, 3])], milestones=[2, 6])),
    "CosineAnnealingWarmRestarts": ("sgd", 1, lambda S, o: S.CosineAnnealingWarmRestarts(
        o, T_0=3)),
    "CosineAnnealingWarmRestarts_mult": ("sgd", 2, lambda S, o: S.CosineAnnealingWarmRestarts(
        o, T_0=2, T_mult=2, eta_min=0.01)),
    "CosineAnnealingWarmRestarts_adam": ("adam", 1, lambda S, o: S.CosineAnnealingWarmRestarts(
        o, 4, 3, 1e-4)),
    "Chained_constant_exponential": ("sgd", 2, lambda S, o: S.ChainedScheduler(
        [S.ConstantLR(o, factor=0.5, total_iters=3), S.ExponentialLR(o, gamma=0.9)])),
    "Chained_restarts_multistep": ("sgd", 1, lambda S, o: S.ChainedScheduler(
        [S.CosineAnnealingWarmRestarts(o, T_0=3), S.MultiStepLR(o, [2, 5])], optimizer=o)),
    "Chained_warmup_cosine": ("adam", 1, lambda S, o: S.ChainedScheduler(
        [S.LinearLR(o, start_factor=0.2, total_iters=4), S.CosineAnnealingLR(o, T_max=6)])),
}


def _run(lib, name, steps=12):
    kind, groups, make = CASES[name]
    opt = _optimizer(lib, kind, groups)
    sched = make(lib.optim.lr_scheduler, opt)
    seen = []
    for _ in range(steps):
        opt.step()
        seen.append((sched.get_last_lr(), _hyper(opt)))
        sched.step()
    return seen, sched


@pytest.mark.parametrize("name", sorted(CASES))
def test_sequence_matches_pytorch(name):
    mine, _ = _run(rg, name)
    ref, _ = _run(torch, name)
    assert _close(mine, ref), (mine, ref)


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_and_resume_match_pytorch(name):
    (_, mine), (_, ref) = _run(rg, name, 5), _run(torch, name, 5)
    ours, theirs = mine.state_dict(), ref.state_dict()
    assert list(ours) == list(theirs)

    assert _close(ours, theirs), (ours, theirs)
    # a fresh optimiser and scheduler that load the states continue as the originals do
    continued = []
    for lib, old in ((rg, mine), (torch, ref)):
        kind, groups, make = CASES[name]
        fresh = make(lib.optim.lr_scheduler, _optimizer(lib, kind, groups))
        fresh.optimizer.load_state_dict(old.optimizer.state_dict())
        fresh.load_state_dict(old.state_dict())
        runs = []
        for sched in (old, fresh):
            lrs = []
            for _ in range(3):
                sched.optimizer.step()
                sched.step()
                lrs.append((sched.get_last_lr(), _hyper(sched.optimizer)))
            runs.append(lrs)
        assert _close(runs[0], runs[1]), runs
        continued.append(runs[0])
    assert _close(continued[0], continued[1]), continued


PLATEAU = {
    "min_rel": dict(mode="min", factor=0.5, patience=1),
    "max_abs_cooldown": dict(mode="max", factor=0.2, patience=0, threshold=0.05,
                             threshold_mode="abs", cooldown=2),
    "min_lr_floor": dict(factor=0.1, patience=0, min_lr=0.002),
    "per_group_min_lr": dict(factor=0.5, patience=1, min_lr=[0.01, 0.05], eps=1e-3),
}
METRICS = [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.7, 0.69, 0.71, 0.8, 0.2, 0.3]


@pytest.mark.parametrize("name", sorted(PLATEAU))
def test_reduce_lr_on_plateau_matches_pytorch(name):
    runs = []
    for lib in (rg, torch):
        opt = _optimizer(lib, groups=2)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **PLATEAU[name])
        seen = []
        for value in METRICS:
            sched.step(lib.tensor(value))  # a 0-d tensor, as a validation loss is
            seen.append((sched.get_last_lr(), sched.num_bad_epochs, sched.cooldown_counter,
                         sched.best))
        runs.append((seen, sched.state_dict()))
    assert _close(runs[0][0], runs[1][0], rel=1e-6), runs
    assert list(runs[0][1]) == list(runs[1][1])


@pytest.mark.parametrize("name,epochs", [("ConstantLR", [4, 1, 7]), ("LinearLR", [2, 9, 0]),
                                         ("PolynomialLR", [3, 1, 8])])
def test_step_with_an_epoch_uses_the_closed_form_and_warns(name, epochs):
    results = []
    for lib in (rg, torch):
        kind, groups, make = CASES[name]
        opt = _optimizer(lib, kind, groups)
        sched = make(lib.optim.lr_scheduler, opt)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            lrs = []
            for epoch in epochs:
                sched.step(epoch)
                lrs.append(sched.get_last_lr())
        results.append((lrs, [str(w.message) for w in seen
                              if "epoch parameter" in str(w.message)]))
    assert _close(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] and len(results[0][1]) == len(epochs)


@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_step_to_an_epoch_as_pytorch(T_mult):
    """step(epoch) for whole and fractional epochs, back and forth (no warning there)."""
    results = []
    for lib in (rg, torch):
        opt = _optimizer(lib, "sgd", 2)
        sched = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 2, T_mult, 0.005)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            lrs = []
            for epoch in [0.5, 1, 2.25, 7, 3.5, 15.75, 1, 30]:
                sched.step(epoch)
                lrs.append((sched.get_last_lr(), sched.T_cur, sched.T_i, sched.last_epoch))
            sched.step()
            lrs.append(sched.get_last_lr())
        results.append((lrs, [str(w.message) for w in seen if "epoch" in str(w.message)]))
    assert _close(results[0], results[1]), results


def _step_times(scheduler, n):
    for _ in range(n):
        scheduler.step()


ERRORS = {
    "constant_factor": lambda S, o: S.ConstantLR(o, factor=1.5),
    "linear_start": lambda S, o: S.LinearLR(o, start_factor=0),
    "linear_end": lambda S, o: S.LinearLR(o, end_factor=-0.1),
    "multiplicative_count": lambda S, o: S.MultiplicativeLR(o, [lambda e: 1, lambda e: 1]),
    "multiplicative_callable": lambda S, o: S.MultiplicativeLR(o, 0.5),
    "plateau_factor": lambda S, o: S.ReduceLROnPlateau(o, factor=1.0),
    "plateau_mode": lambda S, o: S.ReduceLROnPlateau(o, mode="lowest"),
    "plateau_threshold_mode": lambda S, o: S.ReduceLROnPlateau(o, threshold_mode="pct"),
    "plateau_min_lrs": lambda S, o: S.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]),
    "one_cycle_no_steps": lambda S, o: S.OneCycleLR(o, max_lr=0.1),
    "one_cycle_total": lambda S, o: S.OneCycleLR(o, max_lr=0.1, total_steps=0),
    "one_cycle_pct": lambda S, o: S.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=2.0),
    "one_cycle_anneal": lambda S, o: S.OneCycleLR(o, 0.1, 5, anneal_strategy="exp"),
    "one_cycle_past_the_end": lambda S, o: _step_times(S.OneCycleLR(o, 0.1, 2), 3),
    "cyclic_mode": lambda S, o: S.CyclicLR(o, 0.01, 0.1, mode="square"),
    "cyclic_max_lr_count": lambda S, o: S.CyclicLR(o, 0.01, [0.1, 0.2]),
    "sequential_empty": lambda S, o: S.SequentialLR(o, [], []),
    "sequential_milestones": lambda S, o: S.SequentialLR(o, [S.ConstantLR(o)], [1]),
    "sequential_plateau": lambda S, o: S.SequentialLR(
        o, [S.ConstantLR(o), S.ReduceLROnPlateau(o)], [2]),
    "chained_empty": lambda S, o: S.ChainedScheduler([]),
    "chained_plateau": lambda S, o: S.ChainedScheduler([S.ReduceLROnPlateau(o)]),
    "chained_no_optimizer": lambda S, o: S.ChainedScheduler([S.ConstantLR(o), object()]),
    "restarts_T_0": lambda S, o: S.CosineAnnealingWarmRestarts(o, 0),
    "restarts_T_0_float": lambda S, o: S.CosineAnnealingWarmRestarts(o, 2.0),
    "restarts_T_mult": lambda S, o: S.CosineAnnealingWarmRestarts(o, 2, T_mult=0),
    "restarts_eta_min": lambda S, o: S.CosineAnnealingWarmRestarts(o, 2, eta_min="0"),
    "restarts_negative_epoch": lambda S, o: S.CosineAnnealingWarmRestarts(o, 2).step(-1),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
@pytest.mark.filterwarnings("ignore:Detected call of")
def test_constructor_errors_match_pytorch(name):
    outcomes = []
    for lib in (rg, torch):
        try:
            ERRORS[name](lib.optim.lr_scheduler, _optimizer(lib))
            outcomes.append(("ok", ""))
        except Exception as e:  # the class and message are what is compared
            outcomes.append((type(e).__name__, str(e)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] != "ok"


def test_cyclic_momentum_needs_an_optimizer_with_one():
    outcomes = []
    for lib in (rg, torch):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1)
        opt.defaults.pop("momentum")
        try:
            lib.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1)
        except ValueError as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1] and len(outcomes) == 2
