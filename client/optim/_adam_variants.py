"""NAdam and RAdam, as torch.optim's single-tensor forms: the same defaults, state entries
and order of arithmetic, with decoupled (AdamW-style) weight decay as an option."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import _creation
from ._optimizer import (
    Optimizer,
    check_betas,
    check_nonnegative,
    next_step,
    scalar_tensor,
    step_scalar,
)


class _AdamFamily(Optimizer):
    def _moments(self, p, group, extra: dict) -> tuple[dict, float, object]:
        """Count the step, apply weight decay, update both moments: (state, step, grad)."""
        state = self.state[p]
        if not state:
            state["step"] = scalar_tensor(0.0)
            state.update({k: scalar_tensor(v) for k, v in extra.items()})
            state["exp_avg"] = _creation.zeros_like(p)
            state["exp_avg_sq"] = _creation.zeros_like(p)
        beta1, beta2 = group["betas"]
        step = next_step(state)
        g = -p.grad if group["maximize"] else p.grad
        lr, wd = group["lr"], group["weight_decay"]
        if wd and group["decoupled_weight_decay"]:
            p.mul_(1 - lr * wd)
        elif wd:
            g = g.add(p, alpha=wd)
        state["exp_avg"].lerp_(g, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        return state, step, g


class NAdam(_AdamFamily):
    def __init__(self, params: Iterable, lr: float = 2e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_nonnegative(lr=lr, eps=eps)
        check_betas(betas)
        check_nonnegative(weight_decay=weight_decay, momentum_decay=momentum_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _update(self, p, group) -> None:
        state, step, g = self._moments(p, group, {"mu_product": 1.0})
        beta1, beta2 = group["betas"]
        lr, decay = group["lr"], group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * decay))
        # PyTorch multiplies the 0-d state tensor in place, in its own dtype (float32
        # unless the default dtype is float64): rounded the same way here.
        kind = np.float64 if state["mu_product"].dtype.name == "float64" else np.float32
        product = float(kind(state["mu_product"].item()) * kind(mu))
        state["mu_product"] = scalar_tensor(product)
        # What depends on the step travels as 0-d tensors (see step_scalar).
        denom = state["exp_avg_sq"].div(step_scalar(1 - beta2 ** step, p)).sqrt().add(
            group["eps"])
        p.addcdiv_(g, denom, value=step_scalar(-lr * (1.0 - mu) / (1.0 - product), p))
        p.addcdiv_(state["exp_avg"], denom,
                   value=step_scalar(-lr * mu_next / (1.0 - product * mu_next), p))


class RAdam(_AdamFamily):
    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_nonnegative(lr=lr, eps=eps)
        check_betas(betas)
        check_nonnegative(weight_decay=weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      differentiable=differentiable))

    def _update(self, p, group) -> None:
        state, step, _ = self._moments(p, group, {})
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        correction2 = 1 - beta2 ** step
        # What depends on the step travels as 0-d tensors (see step_scalar); the switch
        # below changes the graph once, in the first steps.
        corrected = state["exp_avg"] / step_scalar(1 - beta1 ** step, p)
        # The length of the approximated simple moving average, and its limit
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / correction2
        if rho_t <= 5.0:  # too early for a trustworthy variance: plain momentum
            p.add_(corrected * lr, alpha=-1.0)
            return
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        # PyTorch's number / tensor: the tensor's reciprocal times the number
        adaptive = state["exp_avg_sq"].sqrt().add(group["eps"]).reciprocal() * step_scalar(
            correction2 ** 0.5, p)
        p.add_(corrected * lr * adaptive * step_scalar(rect, p), alpha=-1.0)
