"""Pick a device the way current examples do, make tensors there, and do some arithmetic."""

import torch

if torch.accelerator.is_available():
    device = torch.accelerator.current_accelerator()
elif torch.cuda.is_available():
    device = torch.device("cuda")
else:
    device = torch.device("cpu")
print("accelerator available:", torch.accelerator.is_available())
print("cuda available:", torch.cuda.is_available(), "devices:", torch.cuda.device_count())
print(f"Using {device} device")

torch.set_default_device(device)
x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
print(x.device, x.dtype, x.shape, x.is_floating_point())
y = torch.ones(3, 4) * 0.5
print(torch.get_default_device())
z = (x + y).to(device)
print(z)
print(z.sum(dim=0), z.mean().item())
print(z.T @ z)
print(torch.zeros(2, dtype=torch.int64).dtype, torch.tensor([1, 2]).dtype,
      torch.tensor([1.0, 2]).dtype, torch.tensor(True).dtype)
print(x.numpy().tolist()[1])
torch.set_default_device(None)
print(torch.get_default_device())

torch.manual_seed(42)
a = torch.rand(3)
torch.manual_seed(42)
b = torch.rand(3)
print("same numbers after re-seeding:", torch.equal(a, b), a.shape, a.dtype)
print("in [0, 1):", bool(((a >= 0) & (a < 1)).all()))
