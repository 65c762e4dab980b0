"""The NumPy bridge as the tensors tutorial shows it: a CPU tensor and the array from
.numpy() share memory, as do an array and the tensor from torch.from_numpy, so a change
to one shows in the other."""

import numpy as np
import torch

t = torch.ones(5)
print(f"t: {t}")
n = t.numpy()
print(f"n: {n}")
t.add_(1)
print(f"t: {t}")
print(f"n: {n}")

n = np.ones(5)
t = torch.from_numpy(n)
np.add(n, 1, out=n)
print(f"t: {t}")
print(f"n: {n}")
