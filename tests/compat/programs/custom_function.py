"""Custom autograd Functions, as the "defining new autograd functions" tutorial writes
them: saved tensors, non-tensor arguments in ctx, needs_input_grad, a function used in a
model and trained (gradcheck of such a function: gradcheck_function.py)."""

import torch


class LegendreP3(torch.autograd.Function):
    """P3(x) = (5x^3 - 3x) / 2 with a hand-written derivative."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


class ScaledClamp(torch.autograd.Function):
    """clamp(x * scale, -1, 1); a straight-through gradient inside the range."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        y = x * scale
        ctx.save_for_backward(y)
        return y.clamp(-1, 1)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        return grad * ctx.scale * (y.abs() <= 1).to(grad.dtype), None


x = torch.linspace(-1, 1, 7, requires_grad=True)
y = LegendreP3.apply(x)
print(y)
print(type(y.grad_fn).__name__, y.grad_fn.name(), y.requires_grad)
y.sum().backward()
print(x.grad)
with torch.no_grad():
    print(LegendreP3.apply(x).requires_grad)

z = ScaledClamp.apply(x, 2.0)
z.backward(torch.ones_like(z))
print(z.detach(), x.grad)

# fit y = a + b * P3(c + d x) to a sine, the tutorial's way, with manual updates
xs = torch.linspace(-3.14159, 3.14159, 200)
ys = torch.sin(xs)
a, b, c, d = (torch.full((), v, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3))
learning_rate = 5e-6
for t in range(300):
    y_pred = a + b * LegendreP3.apply(c + d * xs)
    loss = (y_pred - ys).pow(2).sum()
    if t % 100 == 99:
        print(t, f"{loss.item():.4f}")
    loss.backward()
    with torch.no_grad():
        for p in (a, b, c, d):
            p -= learning_rate * p.grad
            p.grad = None
print(f"Result: y = {a.item():.4f} + {b.item():.4f} * P3({c.item():.4f} + {d.item():.4f} x)")
