"""Every usual optimiser fitting the same small regression, with param groups, closures and
the state they keep, as examples switch between them with a command-line flag."""

import torch
import torch.nn as nn


def make_model():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.linspace(-0.5, 0.5 + 0.1 * i, p.numel()).reshape(p.shape))
    return model


x = torch.linspace(-2, 2, 30).reshape(10, 3)
y = (x[:, :1] * 0.5 - x[:, 1:2] ** 2 + 0.1 * x[:, 2:]).tanh()
loss_fn = nn.MSELoss()

recipes = {
    "SGD": lambda p: torch.optim.SGD(p, lr=0.1),
    "SGD momentum nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9,
                                                       nesterov=True, weight_decay=1e-3),
    "Adam": lambda p: torch.optim.Adam(p, lr=0.05),
    "Adam amsgrad": lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), amsgrad=True),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
    "RMSprop": lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5),
    "Adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),
    "Adadelta": lambda p: torch.optim.Adadelta(p, lr=1.0),
    "NAdam": lambda p: torch.optim.NAdam(p, lr=0.05),
    "RAdam": lambda p: torch.optim.RAdam(p, lr=0.05),
}
for name, make in recipes.items():
    model = make_model()
    optimizer = make(model.parameters())
    for _ in range(8):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    state = optimizer.state[model[0].weight]
    print(f"{name:22s} loss {loss.item():.5f} state {sorted(state)}")

# per-layer learning rates through param groups, changed mid-training
model = make_model()
optimizer = torch.optim.SGD([{"params": model[0].parameters()},
                             {"params": model[2].parameters(), "lr": 0.01}], lr=0.1, momentum=0.9)
print([group["lr"] for group in optimizer.param_groups], optimizer.defaults["momentum"])
for step in range(6):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    if step == 2:
        for group in optimizer.param_groups:
            group["lr"] *= 0.5
print(f"param groups loss {loss.item():.5f}", [group["lr"] for group in optimizer.param_groups])
print(model[2].weight)

# LBFGS re-evaluates the model through a closure
model = make_model()
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=10, history_size=5)


def closure():
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss


for step in range(3):
    loss = optimizer.step(closure)
    print(f"LBFGS step {step} loss {loss.item():.5f}")
