"""Loss options a classification or detection script sets on the module: label smoothing
(and the graph it leaves), a positive-class weight on BCEWithLogitsLoss, and the error for a
misspelt reduction."""

import torch
import torch.nn as nn
import torch.nn.functional as F

logits = torch.tensor([[1.2, -0.3, 0.4], [0.1, 2.2, -1.0], [-0.5, 0.3, 0.9]], requires_grad=True)
labels = torch.tensor([0, 1, 2])
criterion = nn.CrossEntropyLoss(label_smoothing=0.2)
loss = criterion(logits, labels)
print(criterion, f"{loss.item():.5f}", loss.grad_fn.name())
loss.backward()
print(logits.grad)

scores = torch.tensor([0.3, -1.2, 2.5, 0.8], requires_grad=True)
present = torch.tensor([0.0, 1.0, 1.0, 0.0])
criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))
loss = criterion(scores, present)
print(f"{loss.item():.5f}", loss.grad_fn.name())
for reduction in ("avg", "total"):
    try:
        F.mse_loss(scores, present, reduction=reduction)
    except ValueError as e:
        print("ValueError:", e)
