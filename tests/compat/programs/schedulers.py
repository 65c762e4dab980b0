"""Learning-rate schedules stepped once per epoch after the optimiser, their last lrs and
their state_dicts, as training scripts log them."""

import torch
from torch.optim import lr_scheduler

w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))


def run(name, make, epochs=8, optim=torch.optim.SGD):
    optimizer = optim([w], lr=0.1)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(epochs):
        optimizer.zero_grad()
        (w ** 2).sum().backward()
        optimizer.step()
        lrs.append(round(scheduler.get_last_lr()[0], 6))
        scheduler.step()
    print(f"{name:12s}", lrs, f"w {w.detach().abs().sum().item():.5f}")
    return scheduler


run("StepLR", lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
run("MultiStepLR", lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 5], gamma=0.1))
run("ExponentialLR", lambda o: lr_scheduler.ExponentialLR(o, gamma=0.8))
cosine = run("Cosine", lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=6, eta_min=0.01))
run("LambdaLR", lambda o: lr_scheduler.LambdaLR(o, lr_lambda=lambda e: 1.0 / (1 + e)),
    optim=torch.optim.Adam)
state = cosine.state_dict()
print(sorted(k for k in state if not k.startswith("_")), state["last_epoch"], state["T_max"],
      round(state["base_lrs"][0], 6))
print(type(cosine).__name__, isinstance(cosine, lr_scheduler.LRScheduler))
