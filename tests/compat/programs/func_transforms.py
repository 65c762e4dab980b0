"""torch.func the way its tutorials use it: per-sample gradients with vmap(grad) over a
functional_call of a model, Jacobians (jacrev, jacfwd), Hessian-vector products with jvp
over grad, and ensembling with stack_module_state."""

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import (functional_call, grad, grad_and_value, hessian, jacfwd, jacrev, jvp,
                        stack_module_state, vjp, vmap)


class SimpleMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 5)
        self.fc2 = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def fixed(model, shift):
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.cos(torch.arange(p.numel()) * 0.8 + i + shift).reshape(p.shape) * 0.5)
    return model


model = fixed(SimpleMLP(), 0.0)
params = {k: v.detach() for k, v in model.named_parameters()}
buffers = {k: v.detach() for k, v in model.named_buffers()}
data = torch.linspace(-1, 1, 12).reshape(4, 3)
targets = torch.tensor([0, 1, 1, 0])


def compute_loss(params, buffers, sample, target):
    batch, targets = sample.unsqueeze(0), target.unsqueeze(0)
    predictions = functional_call(model, (params, buffers), (batch,))
    return F.cross_entropy(predictions, targets)


per_sample = vmap(grad(compute_loss), in_dims=(None, None, 0, 0))(params, buffers, data, targets)
print({k: tuple(v.shape) for k, v in per_sample.items()})
print(per_sample["fc2.bias"])
# the per-sample gradients average to the batch gradient
model.zero_grad()
F.cross_entropy(model(data), targets).backward()
print(torch.allclose(per_sample["fc1.weight"].mean(0), model.fc1.weight.grad, atol=1e-6))

g, value = grad_and_value(lambda x: (x.sin() * x).sum())(torch.tensor([0.5, 1.0, 2.0]))
print(g, f"{value.item():.5f}")
print(grad(grad(lambda x: x ** 3))(torch.tensor(2.0)))


def f(x):
    return torch.stack([x[0] * x[1], x[1].exp(), x.pow(2).sum()])


x = torch.tensor([0.3, -0.7])
print(jacrev(f)(x))
print(jacfwd(f)(x))
print(hessian(lambda x: (x ** 3).sum() + x[0] * x[1])(x))
out, tangent = jvp(f, (x,), (torch.tensor([1.0, 0.0]),))
print(out, tangent)
out, vjp_fn = vjp(f, x)
print(vjp_fn(torch.ones(3)))

# Hessian-vector product, forward over reverse
def loss_of(w):
    return (torch.tanh(data @ w) ** 2).sum()


w = torch.tensor([0.2, -0.1, 0.4])
print(jvp(grad(loss_of), (w,), (torch.tensor([1.0, 1.0, 0.0]),))[1])

# vmap with in_dims/out_dims, nested
batched = vmap(torch.dot)(data, data.flip(0))
print(batched)
print(vmap(lambda row: row * 2, in_dims=1, out_dims=1)(data).shape)
print(vmap(vmap(lambda a, b: a * b + 1))(data, data).sum())
# predicting with an ensemble of models in one call

models = [fixed(SimpleMLP(), s) for s in (0.0, 1.0, 2.0)]
ensemble_params, ensemble_buffers = stack_module_state(models)
print({k: tuple(v.shape) for k, v in ensemble_params.items()})
base = copy.deepcopy(models[0]).to("meta")  # a skeleton: functional_call brings the weights
predictions = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))(
    ensemble_params, ensemble_buffers, data)
print(predictions.shape)
print(predictions[:, 0])
