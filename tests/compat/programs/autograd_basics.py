"""Autograd as the introductory tutorials show it: requires_grad leaves, the graph's
grad_fn nodes and next_functions, backward with and without a gradient argument,
accumulation, retain_grad, retain_graph, torch.autograd.grad with create_graph for a second
derivative, detach, no_grad and requires_grad_ toggling."""

import torch

x = torch.ones(2, 2, requires_grad=True)
print(x)
y = x + 2
print(y)
print(y.grad_fn)
print(type(y.grad_fn).__name__, x.grad_fn, x.is_leaf, y.is_leaf)
z = y * y * 3
out = z.mean()
print(z, out)
print(out.grad_fn.next_functions[0][0].name())
out.backward()
print(x.grad)

a = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
a = a * 3 / (a - 1)
print(a.requires_grad)
a.requires_grad_(True)
print(a.requires_grad)
b = (a * a).sum()
print(b.grad_fn)

v = torch.tensor([3.0, 1.5, -0.25], requires_grad=True)
y = v * 2
while y.detach().norm() < 100:
    y = y * 2
print(y)
y.backward(torch.tensor([0.1, 1.0, 0.0001]))
print(v.grad)

# gradients accumulate until zeroed
w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
for _ in range(3):
    (w ** 2).sum().backward()
print(w.grad)
w.grad.zero_()
print(w.grad)

# retain_grad on a non-leaf, retain_graph for a second backward
h = w * 3
h.retain_grad()
loss = h.pow(2).sum()
loss.backward(retain_graph=True)
print(h.grad, w.grad)
loss.backward()
print(w.grad)
try:
    loss.backward()
except RuntimeError as e:
    print("RuntimeError:", str(e).split(".")[0])

# higher order
t = torch.tensor(1.5, requires_grad=True)
f = t ** 3 + torch.sin(t)
(df,) = torch.autograd.grad(f, t, create_graph=True)
(d2f,) = torch.autograd.grad(df, t)
print(f"{df.item():.5f} {d2f.item():.5f}", df.requires_grad, df.grad_fn.name())

# detach and no_grad
p = torch.randn(3, requires_grad=True)
print(p.detach().requires_grad, (p * 2).detach().grad_fn)
with torch.no_grad():
    q = p * 2
print(q.requires_grad, torch.is_grad_enabled())
with torch.enable_grad():
    print((p * 2).requires_grad)


@torch.no_grad()
def evaluate(t):
    return t * 2


print(evaluate(p).requires_grad)
with torch.inference_mode():
    print((p + 1).requires_grad)
print(torch.tensor([1, 2]).requires_grad)
try:
    torch.tensor([1, 2], requires_grad=True)
except RuntimeError as e:
    print("RuntimeError:", e)
