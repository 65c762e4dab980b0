"""Save a training checkpoint (model, optimiser and scheduler state, epoch, loss), load it
into fresh objects and resume: the resumed run must continue exactly where the first left
off, as the "saving and loading models" recipe promises."""

import io
import os
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.norm = nn.LayerNorm(6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(F.gelu(self.norm(self.fc1(x))))


def build():
    model = TinyNet()
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.sin(torch.arange(p.numel()) * 0.9 + i).reshape(p.shape) * 0.4)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    return model, optimizer, scheduler


x = torch.linspace(-1, 1, 40).reshape(10, 4)
target = torch.stack([x.sum(1), (x ** 2).sum(1)], 1)


def train(model, optimizer, scheduler, epochs):
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return loss


model, optimizer, scheduler = build()
loss = train(model, optimizer, scheduler, 5)
print(f"after 5 epochs loss {loss.item():.5f}")
print(list(model.state_dict().keys()))
print({k: tuple(v.shape) for k, v in model.state_dict().items()})
opt_state = optimizer.state_dict()
print(sorted(opt_state), len(opt_state["state"]), opt_state["param_groups"][0]["params"])
print(sorted(opt_state["state"][0]), opt_state["state"][0]["step"])

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "checkpoint.pt")
    torch.save({"epoch": 5, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(),
                "scheduler_state_dict": scheduler.state_dict(), "loss": loss.item()}, path)
    torch.save(model.state_dict(), os.path.join(tmp, "weights.pt"))

    checkpoint = torch.load(path, weights_only=True)
    print(checkpoint["epoch"], f"{checkpoint['loss']:.5f}",
          type(checkpoint["model_state_dict"]).__name__)
    model2, optimizer2, scheduler2 = build()
    print(model2.load_state_dict(checkpoint["model_state_dict"]))
    optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
    scheduler2.load_state_dict(checkpoint["scheduler_state_dict"])
    print(f"lr after loading {scheduler2.get_last_lr()[0]:.6f}")

    weights = torch.load(os.path.join(tmp, "weights.pt"))
    print(torch.equal(weights["fc1.weight"], model.fc1.weight.detach()), weights["norm.bias"].dtype)

resumed = train(model2, optimizer2, scheduler2, 3)
straight = train(model, optimizer, scheduler, 3)
print(f"resumed {resumed.item():.5f} straight {straight.item():.5f}",
      torch.allclose(model2.fc2.weight, model.fc2.weight))

# a tensor through an in-memory buffer, and evaluation mode for inference
buffer = io.BytesIO()
torch.save(torch.arange(6).reshape(2, 3), buffer)
buffer.seek(0)
print(torch.load(buffer))
model2.eval()
with torch.no_grad():
    print(model2(x[:2]))
