"""Train a small MLP classifier on a synthetic two-class spiral with a DataLoader loop,
then evaluate it under no_grad, the "Learn the Basics" way."""

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

device = "cuda" if torch.cuda.is_available() else "cpu"


def init_from_numpy(model, seed):
    # PyTorch's and remotegrad's random initialisations differ: start from fixed weights
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            bound = 1.0 / np.sqrt(p.shape[-1])
            p.copy_(torch.from_numpy(rng.uniform(-bound, bound, p.shape).astype(np.float32)))


def spiral(n, rng):
    t = np.linspace(0.2, 3.0, n)
    labels = np.arange(n) % 2
    r = t * (1 - 2 * labels)
    points = np.stack([r * np.cos(2 * t), r * np.sin(2 * t)], 1) + rng.normal(0, 0.05, (n, 2))
    return torch.tensor(points, dtype=torch.float32), torch.tensor(labels)


class MLP(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.flatten = nn.Flatten()
        self.stack = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                   nn.Tanh(), nn.Linear(hidden, 2))

    def forward(self, x):
        return self.stack(self.flatten(x))


rng = np.random.default_rng(0)
x_train, y_train = spiral(96, rng)
x_test, y_test = spiral(32, rng)
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=False)
test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=10)
print(len(train_loader.dataset), len(train_loader), len(test_loader))

model = MLP().to(device)
init_from_numpy(model, 1)
print(model)
print(sum(p.numel() for p in model.parameters()), "parameters")
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def train(loader):
    model.train()
    for batch, (X, y) in enumerate(loader):
        X, y = X.to(device), y.to(device)
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 3 == 0:
            seen = (batch + 1) * len(X)
            print(f"  batch {batch} loss {loss.item():.4f} [{seen}/{len(loader.dataset)}]")


def test(loader):
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for X, y in loader:
            pred = model(X)
            total_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    accuracy, average = correct / len(loader.dataset), total_loss / len(loader)
    print(f"  test accuracy {accuracy:.3f}, avg loss {average:.4f}")


for epoch in range(4):
    print(f"Epoch {epoch + 1}")
    train(train_loader)
    test(test_loader)

X, y = next(iter(test_loader))
print(X.shape, X.dtype, y.shape, y.dtype)
logits = model(X)
print(logits.grad_fn.__class__.__name__, logits.requires_grad)
probs = nn.Softmax(dim=1)(logits)
print(probs[:3].detach())
print(model.stack[0].weight.grad is None, model.stack[0].bias[:4])
