"""RMSprop, Adagrad and Adadelta, as torch.optim's single-tensor forms (the ones PyTorch
runs for parameters on the CPU): the same defaults, state entries and order of arithmetic."""

from __future__ import annotations

from collections.abc import Iterable

from .. import _creation
from ._optimizer import Optimizer, check_nonnegative, next_step, scalar_tensor, step_scalar


def _direction(p, group):
    g = -p.grad if group["maximize"] else p.grad
    return g.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else g


class RMSprop(Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False, foreach=None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        check_nonnegative(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay,
                          alpha=alpha)
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps,
                                      centered=centered, weight_decay=weight_decay,
                                      capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _state(self, p, group) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = scalar_tensor(0.0)
            state["square_avg"] = _creation.zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = _creation.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = _creation.zeros_like(p)
        return state

    def _update(self, p, group) -> None:
        state = self._state(p, group)
        alpha = group["alpha"]
        next_step(state)
        g = _direction(p, group)
        square_avg = state["square_avg"].mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if group["centered"]:
            mean = state["grad_avg"].lerp_(g, 1 - alpha)
            avg = square_avg.addcmul(mean, mean, value=-1).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg.add(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"].mul_(group["momentum"]).addcdiv_(g, avg)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.addcdiv_(g, avg, value=-group["lr"])


class Adagrad(Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, fused=None) -> None:
        check_nonnegative(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                          initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, fused=fused))
        # Unlike the others, Adagrad fills its state when it is made (PyTorch does too:
        # a state_dict taken before the first step already holds every parameter's sum).
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["step"] = scalar_tensor(0.0)
                self.state[p]["sum"] = _creation.full_like(
                    p, group["initial_accumulator_value"])

    def _update(self, p, group) -> None:
        state = self.state[p]
        step = next_step(state)
        g = _direction(p, group)
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        std = state["sum"].addcmul_(g, g, value=1).sqrt().add(group["eps"])
        # The decayed rate changes every step: a 0-d tensor (data), not a number in the
        # graph's structure, so each step's graph is the last one's and is planned once.
        p.addcdiv_(g, std, value=step_scalar(-clr, p))


class Adadelta(Optimizer):
    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        check_nonnegative(lr=lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        check_nonnegative(eps=eps, weight_decay=weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, capturable=capturable,
                                      foreach=foreach, differentiable=differentiable))

    def _update(self, p, group) -> None:
        state = self.state[p]
        if not state:
            state["step"] = scalar_tensor(0.0)
            state["square_avg"] = _creation.zeros_like(p)
            state["acc_delta"] = _creation.zeros_like(p)
        rho, eps = group["rho"], group["eps"]
        next_step(state)
        g = _direction(p, group)
        std = state["square_avg"].mul_(rho).addcmul_(g, g, value=1 - rho).add(eps).sqrt()
        delta = state["acc_delta"].add(eps).sqrt().div(std).mul(g)
        state["acc_delta"].mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-group["lr"])
