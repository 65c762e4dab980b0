"""A Hessian-vector product through remotegrad, checked against PyTorch.

The function is the loss of a small tanh network with respect to its flattened weights.
H·v is computed twice, both as one request to the cluster: with
`remotegrad.autograd.functional.hvp`, and by hand as the gradient of (∇f · v), the double
backward that `create_graph=True` makes possible. Both are compared with PyTorch's
`torch.autograd.functional.hvp` when PyTorch is installed.

    python examples/hessian_vector.py [address]
"""

from __future__ import annotations

import sys

import numpy as np

import remotegrad as rg
from remotegrad.autograd.functional import hvp

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 5))
Y = RNG.standard_normal((16, 1))
SIZES = ((5, 8), (8, 1))
N = sum(a * b for a, b in SIZES)


def loss(lib, w):
    """Mean squared error of a 5-8-1 tanh network whose weights are the flat vector w."""
    w1 = w[:40].reshape(5, 8)
    w2 = w[40:].reshape(8, 1)
    x, y = lib.tensor(X), lib.tensor(Y)
    return ((x @ w1).tanh() @ w2 - y).pow(2).mean()


def by_hand(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """H·v as the gradient of the directional derivative ∇f·v (double backward)."""
    wt = rg.tensor(w, requires_grad=True)
    (g,) = rg.autograd.grad(loss(rg, wt), wt, create_graph=True)
    (hv,) = rg.autograd.grad((g * rg.tensor(v)).sum(), wt)
    return hv.numpy()


def main(argv: list[str]) -> int:
    if argv:
        rg.connect(argv[0])
    w, v = RNG.standard_normal(N), RNG.standard_normal(N)
    value, hv = hvp(lambda t: loss(rg, t), rg.tensor(w), rg.tensor(v))
    manual = by_hand(w, v)
    print(f"f(w) = {value.item():.6f}")
    print(f"H·v[:5] = {np.array2string(hv.numpy()[:5], precision=6)}")
    ok = np.allclose(hv.numpy(), manual, rtol=1e-10, atol=1e-12)
    print(f"functional.hvp vs double backward: max |diff| "
          f"{np.abs(hv.numpy() - manual).max():.2e}")
    try:
        import torch
        from torch.autograd.functional import hvp as torch_hvp
    except ImportError:
        print("PyTorch not installed: reference check skipped")
        return 0 if ok else 1
    _, reference = torch_hvp(lambda t: loss(torch, t), torch.tensor(w), torch.tensor(v))
    diff = np.abs(hv.numpy() - reference.numpy()).max()
    print(f"remotegrad vs PyTorch: max |diff| {diff:.2e}")
    ok = ok and np.allclose(hv.numpy(), reference.numpy(), rtol=1e-9, atol=1e-12)
    print("match" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
