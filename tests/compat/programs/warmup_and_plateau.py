"""Schedules that examples compose: a linear warm-up chained into a cosine decay, one-cycle
per batch, and ReduceLROnPlateau driven by a validation loss."""

import torch
from torch.optim import lr_scheduler

w = torch.nn.Parameter(torch.tensor([0.5, -1.5]))
optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9)
warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=3)
decay = lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[3])
lrs = []
for _ in range(8):
    optimizer.zero_grad()
    (w ** 2).sum().backward()
    optimizer.step()
    lrs.append(round(scheduler.get_last_lr()[0], 6))
    scheduler.step()
print("warmup+cosine", lrs)

optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9)
one_cycle = lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=10)
lrs = []
for _ in range(10):
    optimizer.step()
    lrs.append(round(one_cycle.get_last_lr()[0], 5))
    one_cycle.step()
print("one cycle", lrs)

optimizer = torch.optim.Adam([w], lr=0.1)
plateau = lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)
for epoch, val_loss in enumerate([1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7]):
    plateau.step(val_loss)
    print(epoch, val_loss, optimizer.param_groups[0]["lr"])
