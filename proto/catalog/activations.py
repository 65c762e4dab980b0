"""Activations beyond mathfn's: selu, celu, mish, hardswish, hardsigmoid and logsigmoid, as
PyTorch's kernels compute them and with its derivative formulas (catalog ops, so they
differentiate again). softsign and tanhshrink are composites in PyTorch too and are
composed by the client (nn.functional)."""

from __future__ import annotations

from functools import partial

import numpy as np

from . import _batching as _batch
from .mathfn import float_only
from .mathfn import opmath as _opmath
from ._registry import define
from ._samples import F, S, X, unary
from ._types import OpError

# selu's constants, as PyTorch's (torch/csrc: SELU_ALPHA, SELU_SCALE)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_KINK = unary()  # random inputs: the chance of one within 1e-6 of a kink is nil
_act = partial(define, batch=_batch.elementwise, samples=_KINK)


def _elu_forward(xp, a, alpha, scale, input_scale):
    """aten's elu kernel: x * scale above 0, expm1(x * input_scale) * alpha * scale else."""
    w = _opmath(a)
    neg = xp.expm1(xp.where(w > 0, 0, w) * input_scale) * (alpha * scale)
    return xp.where(w > 0, w * scale, neg).astype(a.dtype, copy=False)


def _elu_vjp(g, x, alpha, scale, input_scale):
    """aten's elu_backward (is_result false): g * scale above 0, else
    g * input_scale * alpha * scale * exp(x * input_scale). Its own derivative is PyTorch's
    elu_double_backward's, masked by x < 0: at x = +-0 the branch is a constant (exp(0) = 1),
    so it depends on x only where x < 0 (and exp reads x only there)."""
    coef = input_scale * alpha * scale
    low = x < 0
    neg = g * coef * (low.where(x, 0.0) * input_scale).exp()
    return low.where(neg, (x == 0).where(g * coef, g * scale))


_act("selu", infer=float_only("elu_cpu"),
     forward=lambda xp, a: _elu_forward(xp, a, SELU_ALPHA, SELU_SCALE, 1.0),
     vjp=lambda g, x, out: _elu_vjp(g, x, SELU_ALPHA, SELU_SCALE, 1.0))
def _infer_celu(metas, alpha):
    if alpha == 0:  # celu's input scale is 1 / alpha
        raise OpError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return float_only("elu_cpu")(metas)


_act("celu", infer=_infer_celu,
     forward=lambda xp, a, alpha: _elu_forward(xp, a, alpha, 1.0, 1.0 / alpha),
     # PyTorch's celu rule takes its input scale as 1.0 / alpha.toFloat() (alpha rounded to
     # float32 first), its forward 1 / alpha in double
     vjp=lambda g, x, out, alpha: _elu_vjp(g, x, alpha, 1.0, 1.0 / float(np.float32(alpha))),
     attrs={"alpha": ("float", 1.0)}, samples=_KINK + (S(F(3, 4), alpha=0.5),))


def _mish_forward(xp, a):
    w = _opmath(a)
    return (w * xp.tanh(xp.logaddexp(0, w))).astype(a.dtype, copy=False)


def _mish_vjp(g, x, out):
    """PyTorch's (differentiable) mish backward: g (t + x s (1 - t^2)), t = tanh(softplus
    x), s = sigmoid x, its softplus written log1p(exp(x)) (no threshold): the second
    derivative is NaN where exp(x) overflows (exp's g * inf reads a zero there)."""
    t = x.exp().log1p().tanh()
    return g * (t + x * x.sigmoid() * (1 - t * t))


_act("mish", infer=float_only("mish_cpu"), forward=_mish_forward, vjp=_mish_vjp)


def _hardswish_forward(xp, a):
    w = _opmath(a)
    return (w * xp.clip(w + 3, 0, 6) / 6).astype(a.dtype, copy=False)


def _hardswish_vjp(g, x, out):
    """aten's hardswish_backward: 0 up to -3, g (x / 3 + 0.5) inside, g from 3 on."""
    return (x <= -3).where(0.0, (x < 3).where(g * (x / 3 + 0.5), g))


_act("hardswish", infer=float_only("hardswish_cpu"), forward=_hardswish_forward,
     vjp=_hardswish_vjp,
     samples=unary(lambda *s: F(*s, low=-5.0, high=5.0)) + (
         S(X([-4.0, -3.0, 0.0, 3.0, 4.0]), fd=False),))


def _hardsigmoid_forward(xp, a):
    return (xp.clip(_opmath(a) + 3, 0, 6) / 6).astype(a.dtype, copy=False)


_ONE_SIXTH = float(np.float32(1.0) / np.float32(6.0))  # aten's constant (1.0f / 6.0f)


def _hardsigmoid_vjp(g, x, out):
    """aten's hardsigmoid_backward: g / 6 strictly inside (-3, 3), else 0. PyTorch has no
    derivative of that backward (a second derivative raises there): the samples take none."""
    return (x > -3).where((x < 3).where(g * _ONE_SIXTH, 0.0), 0.0)


_act("hardsigmoid", infer=float_only("hardsigmoid_cpu"), forward=_hardsigmoid_forward,
     vjp=_hardsigmoid_vjp,
     samples=tuple(S(*s.inputs, second=False) for s in unary(
         lambda *s: F(*s, low=-5.0, high=5.0))) + (
         S(X([-4.0, -3.0, 0.0, 3.0, 4.0]), fd=False, second=False),))


def _logsigmoid_forward(xp, a):
    """min(x, 0) - log1p(exp(-|x|)), as aten's log_sigmoid (no overflow either way)."""
    w = _opmath(a)
    with np.errstate(over="ignore"):
        out = xp.minimum(w, 0) - xp.log1p(xp.exp(-xp.abs(w)))
    return out.astype(a.dtype, copy=False)


_act("logsigmoid", infer=float_only("log_sigmoid_cpu"), forward=_logsigmoid_forward,
     vjp=lambda g, x, out: g * (-x).sigmoid())
