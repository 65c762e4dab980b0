"""The tensor basics a first tutorial walks through: creating tensors from data, shapes,
attributes, indexing and slicing, joining, arithmetic, matrix products three ways,
single-element aggregates, in-place operations and broadcasting."""

import numpy as np
import torch

data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
x_np = torch.from_numpy(np.array(data))
print(x_data, x_np.dtype, torch.equal(x_data, x_np))
x_ones = torch.ones_like(x_data)
print(f"Ones Tensor: \n {x_ones} \n")
x_full = torch.full_like(x_data, 7, dtype=torch.float)
print(f"Full Tensor: \n {x_full} \n")
shape = (2, 3,)
print(torch.ones(shape), torch.zeros(shape, dtype=torch.int32))
tensor = torch.arange(12.0).reshape(3, 4)
print(f"Shape of tensor: {tensor.shape}")
print(f"Datatype of tensor: {tensor.dtype}")
print(f"Device tensor is stored on: {tensor.device}")

print(f"First row: {tensor[0]}")
print(f"First column: {tensor[:, 0]}")
print(f"Last column: {tensor[..., -1]}")
tensor[:, 1] = 0
print(tensor)
print(tensor[tensor > 5], tensor[[0, 2], 1:3])
t1 = torch.cat([tensor, tensor, tensor], dim=1)
print(t1.shape, torch.stack([tensor, tensor]).shape)

y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)
y3 = torch.rand_like(y1)
torch.matmul(tensor, tensor.T, out=None)
print(y1, torch.equal(y1, y2), y3.shape)
z1 = tensor * tensor
z2 = tensor.mul(tensor)
print(z1, torch.equal(z1, z2))

agg = tensor.sum()
agg_item = agg.item()
print(agg_item, type(agg_item))
print(tensor.max(), tensor.argmax(), tensor.mean(dim=0), tensor.std(dim=1))
print(tensor.min(dim=1))

print(f"{tensor} \n")
tensor.add_(5)
print(tensor)
tensor = tensor.t()
print(tensor.shape)
tensor.clamp_(max=10).mul_(0.5)
print(tensor)

# broadcasting
a = torch.arange(3).reshape(3, 1)
b = torch.arange(4)
print(a + b, (a * 1.5 - b).dtype, (a / 2).dtype, (a // 2).dtype)
print(torch.where(a > b, a, -b))
print(torch.linspace(0, 1, 5), torch.logspace(0, 2, 3), torch.eye(3, 2))
print(torch.tensor([[1.5, -2.25], [1e-4, 1e4]]))
print(torch.tensor([1e-8, 1.0]), torch.tensor([123456789.0]),
      torch.tensor([0.1, 0.25], dtype=torch.float64))
