"""Target transforms of a dataset pipeline: integer labels to one-hot vectors with
scatter_, as the transforms tutorial's Lambda does, and with F.one_hot, fed to a loss."""

import torch
import torch.nn.functional as F


def target_transform(y):
    return torch.zeros(5, dtype=torch.float).scatter_(0, torch.tensor(y), value=1)


labels = [3, 0, 4, 4, 1]
targets = torch.stack([target_transform(y) for y in labels])
print(targets)
print(torch.equal(targets, F.one_hot(torch.tensor(labels), num_classes=5).float()))
logits = torch.linspace(-1, 1, 25).reshape(5, 5)
print(f"{F.binary_cross_entropy_with_logits(logits, targets).item():.5f}")
rows = torch.zeros(3, 4).scatter_add(1, torch.tensor([[0, 1], [2, 2], [3, 0]]), torch.ones(3, 2))
print(rows)
