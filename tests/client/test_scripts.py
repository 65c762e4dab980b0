"""Whole PyTorch scripts, unchanged but for the import, print what PyTorch prints."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

import remotegrad as rg

# The classic "learning PyTorch with examples" two-layer net: raw tensors, autograd, manual
# SGD under no_grad, zeroing grads in place. Data comes in through `data` so both runs
# see the same numbers.
TWO_LAYER = """
N, D_in, H, D_out = 16, 10, 20, 3
x = torch.tensor(data['x'])
y = torch.tensor(data['y'])
w1 = torch.tensor(data['w1'], requires_grad=True)
w2 = torch.tensor(data['w2'], requires_grad=True)
learning_rate = 1e-3
for t in range(30):
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    if t % 10 == 9:
        print(t, f"{loss.item():.3f}")
    loss.backward()
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad
        w1.grad.zero_()
        w2.grad.zero_()
print(w1.grad.sum(), w2.requires_grad, w2.is_leaf)
"""

CLASSIFIER = """
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
model.load_state_dict({k: torch.tensor(v) for k, v in data['state'].items()})
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
criterion = torch.nn.CrossEntropyLoss()
inputs, labels = torch.tensor(data['x'][:, :4]), torch.tensor(data['labels'])
for epoch in range(20):
    opt.zero_grad()
    outputs = model(inputs)
    loss = criterion(outputs, labels)
    loss.backward()
    opt.step()
_, predicted = torch.max(outputs.data, 1)
correct = (predicted == labels).sum().item()
print(f"loss {loss.item():.4f} correct {correct}/{labels.size(0)}")
print(model)
"""


def _data() -> dict:
    r = np.random.default_rng(0)
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)
    state = {"0.weight": lin1.weight, "0.bias": lin1.bias, "2.weight": lin2.weight,
             "2.bias": lin2.bias}
    return {"x": r.standard_normal((16, 10)).astype("float32"),
            "y": r.standard_normal((16, 3)).astype("float32"),
            "w1": r.standard_normal((10, 20)).astype("float32"),
            "w2": r.standard_normal((20, 3)).astype("float32"),
            "labels": r.integers(0, 3, 16),
            "state": {k: v.detach().numpy() for k, v in state.items()}}


def _run(script: str, module) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(script, {"torch": module, "data": _data()})
    return buf.getvalue()


def test_two_layer_net_with_manual_updates():
    assert _run(TWO_LAYER, rg) == _run(TWO_LAYER, torch)


def test_classifier_training_loop():
    assert _run(CLASSIFIER, rg) == _run(CLASSIFIER, torch)
