"""Adam and AdamW, as torch.optim.Adam / AdamW (bias-corrected moments, amsgrad)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .. import _creation
from ._optimizer import Optimizer


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused=None, decoupled_weight_decay=None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if decoupled_weight_decay is not None:
            self.decoupled = bool(decoupled_weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused))

    def _state(self, p) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = _creation.tensor(0.0)
            state["exp_avg"] = _creation.zeros_like(p)
            state["exp_avg_sq"] = _creation.zeros_like(p)
        return state

    def _update(self, p, group) -> None:
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        g = -p.grad if group["maximize"] else p.grad
        state = self._state(p)
        step = state["step"].item() + 1
        state["step"] = _creation.tensor(float(step))
        if wd and self.decoupled:
            p.mul_(1 - lr * wd)
        elif wd:
            g = g.add(p, alpha=wd)
        state["exp_avg"].mul_(beta1).add_(g, alpha=1 - beta1)
        state["exp_avg_sq"].mul_(beta2).add_(g * g, alpha=1 - beta2)
        second = state["exp_avg_sq"]
        if group["amsgrad"]:
            best = state.get("max_exp_avg_sq")
            best = second.clone() if best is None else best.maximum(second)
            state["max_exp_avg_sq"] = second = best
        # The bias corrections change every step: as 0-d tensors (data) rather than
        # Python numbers (attributes of the graph's structure), each step's graph has the
        # structure of the last, and the engine plans it once.
        step_size = _creation.tensor(lr / (1 - beta1 ** step), dtype=p.dtype)
        correction2 = _creation.tensor(math.sqrt(1 - beta2 ** step), dtype=p.dtype)
        denom = (second.sqrt() / correction2).add_(group["eps"])
        p.sub_(state["exp_avg"] / denom * step_size)


class AdamW(Adam):
    decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 **kwargs) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kwargs)
