"""Extending PyTorch from a training script: a custom loss subclassing _Loss, a custom
optimiser subclassing Optimizer (defaults, param_groups, per-parameter state, a closure),
and a checkpoint of a custom class loaded with weights_only after add_safe_globals; each
reached through the import paths such code uses."""

import os
import tempfile
from dataclasses import dataclass

import torch
import torch.serialization
from torch.nn.modules.loss import _Loss
from torch.nn.parameter import Parameter
from torch.optim.optimizer import Optimizer


class LogCoshLoss(_Loss):
    def forward(self, input, target):
        loss = torch.log(torch.cosh(input - target))
        return loss.mean() if self.reduction == "mean" else loss.sum()


class SignSGD(Optimizer):
    """Steps by the sign of a momentum of the gradient."""

    def __init__(self, params, lr=0.01, beta=0.9):
        if lr <= 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, dict(lr=lr, beta=beta))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["momentum"] = torch.zeros_like(p)
                buf = state["momentum"]
                buf.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                p.add_(buf.sign(), alpha=-group["lr"])
        return loss


@dataclass
class RunInfo:
    epoch: int
    name: str


w = Parameter(torch.tensor([0.8, -0.4, 1.5]))
b = Parameter(torch.tensor(0.1))
x = torch.linspace(-1, 1, 12).reshape(4, 3)
y = torch.tensor([0.5, -0.2, 0.3, 1.0])
criterion = LogCoshLoss()
optimizer = SignSGD([{"params": [w]}, {"params": [b], "lr": 0.002}], lr=0.05)
print(criterion, criterion.reduction, isinstance(criterion, torch.nn.Module))
print(optimizer.defaults, [g["lr"] for g in optimizer.param_groups])


def closure():
    optimizer.zero_grad()
    loss = criterion(x @ w + b, y)
    loss.backward()
    return loss


for step in range(5):
    loss = optimizer.step(closure)
    print(step, f"{loss.item():.5f}", w.detach(), f"{b.item():.4f}")
print(sorted(optimizer.state_dict()["state"][0]), optimizer.state[w]["momentum"])
try:
    SignSGD([w], lr=0)
except ValueError as e:
    print("ValueError:", e)

torch.serialization.add_safe_globals([RunInfo])
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "run.pt")
    torch.save({"info": RunInfo(5, "signsgd"), "w": w.detach(),
                "optimizer": optimizer.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    print(loaded["info"], loaded["w"], len(loaded["optimizer"]["param_groups"]))
