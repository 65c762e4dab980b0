"""A LeNet-style CNN on 12x12 synthetic "digits" (bars at different places), trained with
Adam and a StepLR schedule, in the style of the MNIST example."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.conv2 = nn.Conv2d(4, 8, 3, 1, padding=1)
        # dropout's masks come from the RNG, which differs from PyTorch's by design: p=0
        # keeps the layer (and its train/eval switch) with outputs both runs can compare
        self.dropout = nn.Dropout(0.0)
        self.fc1 = nn.Linear(8 * 2 * 2, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.conv1(x))           # 12 -> 10
        x = F.max_pool2d(x, 2)              # 10 -> 5
        x = F.relu(self.conv2(x))           # 5 -> 5
        x = F.max_pool2d(x, 2)              # 5 -> 2
        x = self.dropout(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


def images(n, rng):
    labels = np.arange(n) % 3
    x = rng.normal(0, 0.1, (n, 1, 12, 12)).astype(np.float32)
    for i, c in enumerate(labels):
        x[i, 0, 2 + 3 * c:4 + 3 * c, :] += 1.0  # a horizontal bar whose height is the class
    return torch.from_numpy(x), torch.from_numpy(labels)


rng = np.random.default_rng(3)
model = Net()
with torch.no_grad():
    for name, p in model.named_parameters():
        fan_in = p[0].numel() if p.dim() > 1 else p.shape[0]
        p.copy_(torch.tensor(rng.uniform(-1, 1, tuple(p.shape)) / np.sqrt(fan_in),
                             dtype=torch.float32))
        print(name, tuple(p.shape))

train = DataLoader(TensorDataset(*images(48, rng)), batch_size=12)
test_x, test_y = images(24, rng)
optimizer = optim.Adam(model.parameters(), lr=0.01)
scheduler = StepLR(optimizer, step_size=2, gamma=0.5)

for epoch in range(1, 5):
    model.train()
    for batch_idx, (data, target) in enumerate(train):
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % 2 == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train.dataset)}]"
                  f"\tLoss: {loss.item():.5f}")
    scheduler.step()
    model.eval()
    with torch.no_grad():
        output = model(test_x)
        test_loss = F.nll_loss(output, test_y, reduction="sum").item() / len(test_y)
        pred = output.argmax(dim=1, keepdim=True)
        correct = pred.eq(test_y.view_as(pred)).sum().item()
    print(f"Test: loss {test_loss:.4f}, accuracy {correct}/{len(test_y)}, "
          f"lr {scheduler.get_last_lr()[0]:.5f}")

feature = F.max_pool2d(F.relu(model.conv1(test_x[:2])), 2)
print(feature.shape, feature.grad_fn.name())
print(model.conv1.weight.grad.shape, model.conv1.weight.grad.abs().sum() > 0)
print(output[:2].exp())
