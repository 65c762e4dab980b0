"""set_default_dtype(float64) through a real cluster (gateway, two workers, Redis): the
workers know nothing of the client's default, and the printed values, dtypes and reprs are
PyTorch's (the graphs name every dtype; see client/_default_dtype.py); the special
functions and activations of proto/catalog/special_math.py and activations.py too."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import {lib} as torch
torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
print(torch.get_default_dtype())
print(torch.arange(5) / 3, torch.arange(4).sqrt(), torch.tensor([1, 2]) * 0.1)
print(torch.where(torch.tensor([True, False]), 0.1, 0.2), torch.tensor(16777217) + 0.5)
print(torch.tensor([0.1, 0.2]), torch.ones(2, dtype=torch.float32) / 3, torch.linspace(0, 1, 4))
x = torch.tensor([0.5, 1.5, 2.5], requires_grad=True)
y = (x.exp() * torch.arange(3) / 7).sum()
y.backward()
print(y, x.grad)
w = torch.tensor([[0.1, -0.2], [0.3, 0.4]], requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
for _ in range(3):
    opt.zero_grad()
    loss = ((torch.tensor([[1, 2]]) / 2 @ w - 0.3) ** 2).mean()
    loss.backward()
    opt.step()
print(loss, w)
z = torch.tensor([0.3, 1.2, 2.5], requires_grad=True)
parts = (torch.atan2(torch.arange(3), torch.tensor([2, 1, 3])), z.lgamma(), (z / 3).erfinv(),
         z.asinh(), torch.nn.functional.mish(z), torch.nn.Hardswish()(z * 2),
         torch.hypot(z, z.flip(0)), z.logit(0.2), torch.polygamma(1, z), *torch.var_mean(z))
total = sum(p.sum() for p in parts[1:])
(g,) = torch.autograd.grad(total, z)
print(*parts, g)
"""


def _run(lib: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(lib=lib)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_default_float64_through_a_cluster(cluster):
    pytest.importorskip("torch")
    ours = _run("remotegrad", dict(os.environ, REMOTEGRAD_ADDR=cluster.address))
    theirs = _run("torch", dict(os.environ))
    assert ours == theirs
    assert "dtype=torch.float32" in ours and "float64" in ours.splitlines()[0]
