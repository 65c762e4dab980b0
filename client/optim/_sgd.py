"""SGD (momentum, dampening, Nesterov, weight decay, maximize), as torch.optim.SGD."""

from __future__ import annotations

from collections.abc import Iterable

from .._tensor import apply
from ._optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False, foreach=None, differentiable: bool = False,
                 fused=None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _update(self, p, group) -> None:
        g = -p.grad if group["maximize"] else p.grad
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])
        momentum, lr, dampening = group["momentum"], group["lr"], group["dampening"]
        # Python numbers (the usual case) go straight to the recorded ops: what buf.mul_(m)
        # and p.add_(g, alpha=-lr) record, without binding PyTorch's arguments (~2 us an op,
        # three ops a parameter). A tensor lr or momentum takes the methods' conversions.
        direct = (type(momentum) in _NUMBERS and type(lr) in _NUMBERS
                  and type(dampening) in _NUMBERS)
        if momentum:
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.clone().detach()
            elif direct and not dampening:
                # buf.mul_(m).add_(g) as one node, g + m * buf: the same number (the
                # product rounded, then the sum, which is commutative), one node less to
                # record, walk and run per parameter and step. The version counts both of
                # PyTorch's in-place ops.
                buf._assign(apply("add", g, buf, alpha=momentum))
                buf._vc[0] += 1
            elif direct:
                buf._inplace("mul", momentum)
                buf._inplace("add", g, alpha=1 - dampening)
            else:
                buf.mul_(momentum).add_(g, alpha=1 - dampening)
            g = g.add(buf, alpha=momentum) if group["nesterov"] else buf
        if direct:
            p._inplace("add", g, alpha=-lr)
        else:
            p.add_(g, alpha=-lr)


_NUMBERS = (int, float)
