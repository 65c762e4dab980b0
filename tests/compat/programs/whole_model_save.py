"""Saving the whole model object rather than its state_dict, as older examples do, and a
training script that imports torch.onnx for an export it never reaches: torch.save(model),
torch.load(..., weights_only=False), the default weights_only=True refusing the pickle, and
the model's class found again by its module path."""

import os
import pickle
import tempfile

import torch
import torch.nn as nn
import torch.onnx  # noqa: F401  (the export step is behind a flag this run does not set)


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 4), nn.SiLU(), nn.Linear(4, 1))

    def forward(self, x):
        return self.body(x)


model = Regressor()
with torch.no_grad():
    for i, p in enumerate(model.parameters()):
        p.copy_(torch.linspace(-0.6, 0.6, p.numel()).reshape(p.shape) + 0.1 * i)
x = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
before = model(x)

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.pth")
    torch.save(model, path)
    loaded = torch.load(path, weights_only=False)
    print(type(loaded).__name__, loaded.training, type(loaded.body[1]).__name__)
    print(torch.equal(loaded(x), before), loaded(x).detach())
    try:
        torch.load(path)
    except pickle.UnpicklingError as e:
        print("weights_only refuses a whole module:", str(e).splitlines()[0][:40])
    loaded.eval()
    with torch.no_grad():
        print(loaded(x).requires_grad, loaded.body[0].weight.requires_grad)
