"""Forward-mode AD with dual numbers (directional derivatives of a small network, checked
against the reverse-mode gradient), a warm-restart schedule chained with a decay, bounds
given as tensors to clamp, and dtype conversions with .to, as tutorials and training
scripts use them."""

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.optim import lr_scheduler

# --- dual numbers: one directional derivative per forward pass -----------------------------
x = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(2, 3)
w = torch.tensor([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.6]], dtype=torch.float64)
direction = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]], dtype=torch.float64)


def loss_fn(weight):
    return F.softplus(x @ weight).sin().pow(2).mean()


with fwAD.dual_level():
    dual_w = fwAD.make_dual(w, direction)
    out = loss_fn(dual_w)
    primal, tangent = fwAD.unpack_dual(out)
    print("loss", f"{primal.item():.8f}", "directional derivative", f"{tangent.item():.8f}")
    print("outside the graph:", fwAD.unpack_dual(x).tangent)

w_r = w.clone().requires_grad_(True)
loss_fn(w_r).backward()
print("reverse mode agrees:", abs((w_r.grad * direction).sum().item() - tangent.item()) < 1e-12)

try:
    fwAD.make_dual(w, direction)
except RuntimeError as e:
    print("RuntimeError:", e)

with fwAD.dual_level():
    try:
        fwAD.make_dual(w, direction[:2])
    except RuntimeError as e:
        print("RuntimeError:", str(e)[:60])

# --- warm restarts chained with an exponential decay ----------------------------------------
p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
sched = lr_scheduler.ChainedScheduler([
    lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001),
    lr_scheduler.ExponentialLR(opt, gamma=0.95)])
lrs = []
for _ in range(10):
    opt.zero_grad()
    (p ** 2).sum().backward()
    opt.step()
    lrs.append(round(sched.get_last_lr()[0], 6))
    sched.step()
print("lrs", lrs)
print("restarts state", {k: v for k, v in sched.state_dict()["_schedulers"][0].items()
                         if k in ("T_i", "T_cur", "last_epoch")})

# --- tensor bounds and dtype conversions -----------------------------------------------------
scores = torch.tensor([[0.3, -1.2, 2.5], [1.1, 0.0, -0.4]], requires_grad=True)
low = torch.tensor([0.0, -1.0, 0.0])
high = torch.tensor([[1.0], [0.5]])
clipped = torch.clamp(scores, min=low, max=high)
clipped.sum().backward()
print(clipped)
print(scores.grad)
print(scores.to(torch.float64).dtype, scores.to("cpu", torch.int64).dtype,
      scores.to(torch.zeros(1, dtype=torch.float16)).dtype, scores.to("cpu") is scores)
try:
    scores.to("float64")
except RuntimeError as e:
    print("RuntimeError:", e)
