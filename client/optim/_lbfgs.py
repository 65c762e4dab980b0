"""LBFGS, as torch.optim.LBFGS: the two-loop recursion over a history of (y, s) pairs, with
an optional strong-Wolfe line search, the same defaults, stopping tests and state entries.

The decisions (stopping tests, the line search's bracketing) need numbers: each reads a
scalar back from the cluster. The two-loop recursion stays lazy (its coefficients are 0-d
tensors), so one iteration costs a few round trips whatever the history size. The line
search works in Python floats: the same numbers as PyTorch's 0-d tensors in float64."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial

from .. import _creation
from .._grad_mode import enable_grad, no_grad
from ._optimizer import Optimizer, check_nonnegative


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), kept in bounds."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    square = d1 ** 2 - g1 * g2
    if square < 0:
        return (low + high) / 2.0
    d2 = math.sqrt(square)
    if x1 <= x2:
        at = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        at = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(at, low), high)


class _Point:
    """One evaluation along the search direction: step t, loss f, gradient g, slope gtd."""

    __slots__ = ("f", "g", "gtd", "t")

    def __init__(self, t, f, g, gtd) -> None:
        self.t, self.f, self.g, self.gtd = t, f, g, gtd


def _strong_wolfe(evaluate, t: float, d, f: float, g, gtd: float, c1: float = 1e-4,
                  c2: float = 0.9, tolerance_change: float = 1e-9, max_ls: int = 25):
    d_norm = d.abs().max().item()
    start = _Point(0, f, g, gtd)
    prev, new = start, _Point(t, *evaluate(t))
    evals, ls_iter, done, bracket = 1, 0, False, None
    # 1. bracket a step that satisfies the strong Wolfe conditions
    while ls_iter < max_ls:
        if new.f > f + c1 * new.t * gtd or (ls_iter > 1 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if abs(new.gtd) <= -c2 * gtd:
            bracket, done = [new], True
            break
        if new.gtd >= 0:
            bracket = [prev, new]
            break
        step = _cubic_minimum(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd,
                              bounds=(new.t + 0.01 * (new.t - prev.t), new.t * 10))
        prev, new = new, _Point(step, *evaluate(step))
        evals, ls_iter = evals + 1, ls_iter + 1
    if ls_iter == max_ls:
        bracket = [start, new]
    # 2. zoom into the bracket
    insufficient = False
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1].t - bracket[0].t) * d_norm < tolerance_change:
            break
        a, b = bracket
        step = _cubic_minimum(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        top, bottom = max(a.t, b.t), min(a.t, b.t)
        eps = 0.1 * (top - bottom)
        if min(top - step, step - bottom) < eps:  # too close to an end: move inside
            if insufficient or step >= top or step <= bottom:
                step = top - eps if abs(step - top) < abs(step - bottom) else bottom + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        new = _Point(step, *evaluate(step))
        evals, ls_iter = evals + 1, ls_iter + 1
        if new.f > f + c1 * step * gtd or new.f >= bracket[low].f:
            bracket[high] = new
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if abs(new.gtd) <= -c2 * gtd:
                done = True
            elif new.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = new
    best = bracket[low]
    return best.f, best.g, best.t, evals


class LBFGS(Optimizer):
    def __init__(self, params: Iterable, lr: float = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        check_nonnegative(lr=lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # --- the parameters as one flat vector ------------------------------------------------
    def _flat_grad(self):
        parts = [_creation.zeros(p.numel(), dtype=p.dtype) if p.grad is None
                 else p.grad.reshape(-1) for p in self._params]
        return parts[0] if len(parts) == 1 else _cat(parts)

    def _add(self, step, direction) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(direction[offset:offset + n].reshape(p.shape), alpha=_number(step))
            offset += n

    def _evaluate(self, closure, start, direction, step):
        """Loss and flat gradient at start + step * direction; the parameters go back."""
        self._add(step, direction)
        with enable_grad():
            loss = float(closure())
        grad = self._flat_grad()
        for p, saved in zip(self._params, start):
            p.copy_(saved)
        return loss, grad, grad.dot(direction).item()

    def step(self, closure: Callable):
        with no_grad():
            return self._step(closure)

    def _step(self, closure: Callable):
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss, evals = float(orig_loss), 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.abs().max().item() <= tol_grad:
            return orig_loss
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            d = self._direction(state, flat_grad, group["history_size"])
            if state.get("prev_flat_grad") is None:
                state["prev_flat_grad"] = flat_grad.clone()
            else:
                state["prev_flat_grad"].copy_(flat_grad)
            state["prev_loss"] = prev_loss = loss
            gtd, total = flat_grad.dot(d), flat_grad.abs().sum()
            _settle([gtd, total, d, state["prev_flat_grad"], *state["old_dirs"][-1:],
                     *state["old_stps"][-1:], *state["ro"][-1:], state["H_diag"],
                     *(a for a in state.get("al", ()) if a is not None)])
            t = min(1.0, 1.0 / total.item()) * lr if state["n_iter"] == 1 else lr
            gtd = gtd.item()
            if gtd > -tol_change:
                state["t"] = t
                break
            if group["line_search_fn"] is not None:
                if group["line_search_fn"] != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                start = [p.clone() for p in self._params]
                loss, flat_grad, t, ls_evals = _strong_wolfe(
                    partial(self._evaluate, closure, start, d),
                    t, d, loss, flat_grad, gtd, max_ls=max_eval - evals)
                self._add(t, d)
                converged = flat_grad.abs().max().item() <= tol_grad
            else:
                self._add(t, d)
                ls_evals, converged = 0, False
                if n_iter != max_iter:
                    with enable_grad():
                        loss = float(closure())
                    flat_grad = self._flat_grad()
                    converged = flat_grad.abs().max().item() <= tol_grad
                    ls_evals = 1
            state["t"] = t
            evals += ls_evals
            state["func_evals"] += ls_evals
            if n_iter == max_iter or evals >= max_eval or converged:
                break
            if (d * t).abs().max().item() <= tol_change or abs(loss - prev_loss) < tol_change:
                break
        return orig_loss

    def _direction(self, state: dict, flat_grad, history_size: int):
        """The quasi-Newton direction: -H g by the two-loop recursion over the history."""
        if state["n_iter"] == 1:
            state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
            state["d"] = d = -flat_grad
            return d
        y = flat_grad - state["prev_flat_grad"]
        s = state["d"] * state["t"]
        ys = y.dot(s)
        dirs, stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
        if ys.item() > 1e-10:  # keep the pair only where the curvature is positive
            if len(dirs) == history_size:
                dirs.pop(0), stps.pop(0), ro.pop(0)
            dirs.append(y), stps.append(s), ro.append(1.0 / ys)
            state["H_diag"] = ys / y.dot(y)
        al = state.setdefault("al", [None] * history_size)
        q = -flat_grad
        for i in range(len(dirs) - 1, -1, -1):
            al[i] = stps[i].dot(q) * ro[i]
            q = q - dirs[i] * al[i]
        r = q * state["H_diag"]
        for i in range(len(dirs)):
            be = dirs[i].dot(r) * ro[i]
            r = r + stps[i] * (al[i] - be)
        state["d"] = r
        return r


def _settle(tensors) -> None:
    """Compute these in one round trip and keep their values: what LBFGS keeps from one
    iteration to the next (direction, history) would otherwise stay a lazy graph over
    every earlier iteration, shipped again and recomputed by each later request."""
    from .._session import materialize
    nodes = [t._node for t in tensors if hasattr(t, "_node") and t._node.value is None]
    if nodes:
        materialize(nodes)


def _cat(parts):
    from .. import cat  # the package's torch.cat (resolved at call time: no import cycle)
    return cat(parts, 0)


def _number(step):
    return step.item() if hasattr(step, "item") else step
