"""Check a custom Function's backward against finite differences with gradcheck and
gradgradcheck, in double precision, as extension authors do before training with it."""

import torch


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, power):
        ctx.save_for_backward(x)
        ctx.power = power
        return x ** power

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.power * x ** (ctx.power - 1), None


class WrongCube(Cube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x ** 2, None  # off by the factor 3


x = torch.linspace(-1.5, 1.5, 6, dtype=torch.double, requires_grad=True)
print(torch.autograd.gradcheck(Cube.apply, (x, 3), eps=1e-6, atol=1e-4))
print(torch.autograd.gradgradcheck(Cube.apply, (x, 3), eps=1e-6, atol=1e-4))
print(torch.autograd.gradcheck(WrongCube.apply, (x, 3), eps=1e-6, atol=1e-4, raise_exception=False))
try:
    torch.autograd.gradcheck(WrongCube.apply, (x, 3), eps=1e-6, atol=1e-4)
except RuntimeError as e:
    print(type(e).__name__, str(e).splitlines()[0])
print(torch.autograd.gradcheck(torch.sin, (x,)),
      torch.autograd.gradcheck(lambda t: (t * t).sum(), (x,)))
