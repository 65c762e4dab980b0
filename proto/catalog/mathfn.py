"""Unary math functions and activations. Integer inputs give the default float dtype,
as in PyTorch. Ops whose derivative PyTorch fuses (tanh, sigmoid) get a fused backward op
of their own, itself differentiable, so training steps run one kernel per derivative."""

from __future__ import annotations

import math
from functools import partial

from . import _batching as _batch
from ._registry import define
from ._samples import F, P, S, X, unary
from ._special import erf, zero_where
from ._types import DEFAULT_FLOAT, FLOATING, Meta, OpError, torch_dtype_name


def infer_float_unary(metas: list[Meta], **_) -> Meta:
    m = metas[0]
    return Meta(m.shape, m.dtype if m.dtype in FLOATING else DEFAULT_FLOAT)


def infer_same(metas: list[Meta], **_) -> Meta:
    return Meta(metas[0].shape, metas[0].dtype)


def float_only(kernel: str):
    """The rule of an op PyTorch has no integer or bool kernel for (its CPU kernel's name
    is in the message)."""
    def infer(metas: list[Meta], **_) -> Meta:
        m = metas[0]
        if m.dtype not in FLOATING:
            raise OpError(f'"{kernel}" not implemented for \'{torch_dtype_name(m.dtype)}\'')
        return Meta(m.shape, m.dtype)
    return infer


def _infer_relu(metas: list[Meta]) -> Meta:
    if metas[0].dtype == "bool":
        raise OpError("Boolean inputs not supported for relu")
    return infer_same(metas)


# numpy would compute ints in float64; PyTorch gives the default float dtype, so the engine
# casts integer inputs first (float_inputs) and the forward sees floats only. An op with an
# infer of its own (integer inputs refused, or kept) sets float_inputs=False.
_unary = partial(define, batch=_batch.elementwise, infer=infer_float_unary, float_inputs=True,
                 samples=unary())


def opmath(a):
    """a as PyTorch's CPU kernels compute it: float16 in float32 (Vectorized float16
    converts to float, computes, converts back; the caller rounds once at the end), other
    dtypes as they are. 1 / sqrt or 1 / (1 + exp(-x)) in float16 arithmetic rounds at
    every step; sinc(1) so is 3e-4 (pi rounds to 3.140625)."""
    return a.astype("float32") if a.dtype.itemsize < 4 else a


def _wide(forward):
    """forward computed on opmath(a), rounded once to a's dtype."""
    def wide(xp, a, *rest, **attrs):
        if a.dtype.itemsize >= 4:
            return forward(xp, a, *rest, **attrs)
        return forward(xp, opmath(a), *rest, **attrs).astype(a.dtype)
    wide.__name__ = getattr(forward, "__name__", "wide")
    return wide


_LN2 = math.log(2.0)
_LN10 = 2.3025850929940456  # PyTorch's literal for log10's rule (math.log(10) is 1 ulp off)
_unary("exp", ufunc="exp", vjp=lambda g, x, out: g * out)
_unary("log", ufunc="log", vjp=lambda g, x, out: g / x, samples=unary(P))
_unary("log1p", ufunc="log1p", vjp=lambda g, x, out: g / (x + 1), samples=unary(P))
_unary("expm1", ufunc="expm1", vjp=lambda g, x, out: g * (out + 1))
_unary("log2", ufunc="log2", vjp=lambda g, x, out: g / (x * _LN2), samples=unary(P))
_unary("sqrt", ufunc="sqrt", vjp=lambda g, x, out: g / (out * 2), samples=unary(P))
_unary("rsqrt", forward=_wide(lambda xp, a: 1 / xp.sqrt(a)),
       vjp=lambda g, x, out: g * -0.5 * (out * out * out), fusable=True, samples=unary(P))
_unary("reciprocal", forward=lambda xp, a: 1 / a, vjp=lambda g, x, out: -g * (out * out),
       fusable=True, samples=unary(P) + (S(F(3, 4, low=-2.0, high=-0.5)),))
_unary("sin", ufunc="sin", vjp=lambda g, x, out: g * x.cos())
_unary("cos", ufunc="cos", vjp=lambda g, x, out: -g * x.sin())
_unary("tan", ufunc="tan", vjp=lambda g, x, out: g * (out * out + 1),
       samples=unary(lambda *s: F(*s, low=-1.2, high=1.2)))
_unary("log10", ufunc="log10", vjp=lambda g, x, out: g / (x * _LN10), samples=unary(P))
_unary("exp2", ufunc="exp2", vjp=lambda g, x, out: g * out * _LN2)
# Inverse trigonometric and hyperbolic functions, with PyTorch's formulas (its second
# derivatives differentiate these): asin' = rsqrt(1 - x^2), acos' = -asin', atan' = 1/(1+x^2).
_OPEN_UNIT = unary(lambda *s: F(*s, low=-0.9, high=0.9))
_unary("asin", ufunc="arcsin", vjp=lambda g, x, out: g * (-x * x + 1).rsqrt(),
       samples=_OPEN_UNIT)
_unary("acos", ufunc="arccos", vjp=lambda g, x, out: g * -((-x * x + 1).rsqrt()),
       samples=_OPEN_UNIT)
_unary("atan", ufunc="arctan", vjp=lambda g, x, out: g / (x * x + 1))
_unary("sinh", ufunc="sinh", vjp=lambda g, x, out: g * x.cosh())
_unary("cosh", ufunc="cosh", vjp=lambda g, x, out: g * x.sinh())
_unary("tanh", ufunc="tanh", vjp=lambda g, x, out: g.tanh_backward(out))
_unary("sigmoid", forward=_wide(lambda xp, a: 1 / (1 + xp.exp(-a))),
       vjp=lambda g, x, out: g.sigmoid_backward(out), fusable=True)
_unary("erf", forward=erf, vjp=lambda g, x, out: (-x * x).exp() * (2 / math.sqrt(math.pi)) * g)


def _tanh_bw(xp, g, y):
    if not y.ndim:
        return g * (1 - y * y)
    t = y * y          # one temporary, updated in place: g * (1 - y^2)
    xp.subtract(1, t, out=t)
    return xp.multiply(g, t, out=t)


def _sigmoid_bw(xp, g, y):
    if not y.ndim:
        return g * y * (1 - y)
    t = 1 - y          # g * y * (1 - y)
    xp.multiply(t, y, out=t)
    return xp.multiply(g, t, out=t)


def _binary_same(metas, **_):
    return Meta(metas[1].shape, metas[1].dtype)


_BW_SAMPLES = (S(F(3, 4), F(3, 4, low=-0.9, high=0.9)), S(F(), F(low=0.1, high=0.9)),
               S(F(0, 2), F(0, 2)))
# tanh_backward(grad_output, output) = grad_output * (1 - output^2), as aten's.
define("tanh_backward", batch=_batch.all_batched(), nin=2, infer=_binary_same, forward=_tanh_bw,
       vjp=(lambda h, g, y, out: h * (1 - y * y), lambda h, g, y, out: h * g * y * -2),
       promote=True, fusable=lambda xp, g, y: g * (1 - y * y), fresh=True, samples=_BW_SAMPLES)
define("sigmoid_backward", batch=_batch.all_batched(), nin=2, infer=_binary_same,
       forward=_sigmoid_bw,
       vjp=(lambda h, g, y, out: h * y * (1 - y),
            lambda h, g, y, out: h * g * (1 - y * 2)), promote=True,
       fusable=lambda xp, g, y: g * y * (1 - y), fresh=True, samples=_BW_SAMPLES)



def _threshold_bw(xp, g, y, threshold):
    return xp.where(y <= threshold, 0, g)  # a NaN output passes the gradient, as aten's


def _threshold_bw_forward(xp, g, y, threshold):
    return zero_where(xp, y <= threshold, g)


# threshold_backward(grad_output, output, threshold): grad_output where output > threshold,
# else 0, as aten's (relu's rule). Its derivative in `output` is zero, yet the result
# depends on it, as in PyTorch: a relu's gradient made with create_graph requires grad, and
# its second derivative is zeros, not "does not require grad".
define("threshold_backward",
       batch=_batch.all_batched(),
       nin=2, infer=_binary_same, forward=_threshold_bw_forward,
       vjp=(lambda h, g, y, out, threshold: h.threshold_backward(y, threshold=threshold),
            lambda h, g, y, out, threshold: y.full_like(0.0)),
       attrs={"threshold": ("float", 0.0)}, promote=True, fusable=_threshold_bw,
       samples=_BW_SAMPLES + (S(F(4), X([float("nan"), -0.0, 0.5, -1.0]), fd=False),))

# --- activations ------------------------------------------------------------------------
_KINK = unary()  # random inputs: the chance of one within 1e-6 of the kink is nil
# where, not maximum: relu(-0.0) is -0.0 in PyTorch (only values below 0 are replaced)
_unary("relu", infer=_infer_relu, float_inputs=False,
       forward=lambda xp, a: zero_where(xp, a < 0, a),
       vjp=lambda g, x, out: g.threshold_backward(out, threshold=0.0),
       fusable=lambda xp, a: xp.where(a < 0, 0, a),
       samples=_KINK + (S(X([-0.0, float("nan"), 1.0, -1.0]), fd=False),))
def _leaky_bw(xp, g, x, negative_slope):
    return xp.where(x > 0, g, g * negative_slope)


# leaky_relu_backward(grad_output, input, slope), as aten's: like threshold_backward, zero
# in its input but depending on it (a create_graph gradient requires grad, as in PyTorch).
define("leaky_relu_backward",
       batch=_batch.all_batched(),
       nin=2, infer=_binary_same, forward=_leaky_bw,
       vjp=(lambda h, g, x, out, negative_slope:
                h.leaky_relu_backward(x, negative_slope=negative_slope),
            lambda h, g, x, out, negative_slope: x.full_like(0.0)),
       attrs={"negative_slope": ("float", 0.01)}, promote=True, fusable=_leaky_bw,
       samples=_BW_SAMPLES + (S(F(3), F(3), negative_slope=0.2),))
_unary("leaky_relu", infer=float_only("leaky_relu_cpu"), float_inputs=False,
       forward=_wide(lambda xp, a, negative_slope: xp.where(a > 0, a, a * negative_slope)),
       vjp=lambda g, x, out, negative_slope:
               g.leaky_relu_backward(x, negative_slope=negative_slope),
       attrs={"negative_slope": ("float", 0.01)}, fusable=True,
       samples=_KINK + (S(F(3, 4), negative_slope=0.2),))
# where, not minimum: elu(-0.0) is -0.0 as in PyTorch (alpha * expm1(-0.0))
_unary("elu", infer=float_only("elu_cpu"), float_inputs=False,
       forward=lambda xp, a, alpha:
           xp.where(a > 0, a, alpha * xp.expm1(xp.where(a > 0, 0, a))),
       # PyTorch's elu_backward of the input: alpha e^x where x <= 0 (so a NaN takes g),
       # read from x, not the result; its own derivative is 0 at x = 0 (PyTorch's) and
       # where x is NaN: exp reads x only where x < 0, so the branch not taken at a NaN
       # (a zero cotangent times exp(NaN)) adds no NaN to the second derivative
       vjp=lambda g, x, out, alpha: (x < 0).where(
           g * alpha * (x < 0).where(x, 0.0).exp(), (x == 0).where(g * alpha, g)),
       attrs={"alpha": ("float", 1.0)}, samples=_KINK + (S(F(3, 4), alpha=0.5),))


def _gelu_forward(xp, a, approximate):
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (a + 0.044715 * a * a * a)
        return 0.5 * a * (1 + xp.tanh(inner))
    return 0.5 * a * (1 + erf(xp, a * (1 / math.sqrt(2))))


def _gelu_decompose(x, approximate):
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
        return x * 0.5 * (inner.tanh() + 1)
    return x * 0.5 * ((x * (1 / math.sqrt(2))).erf() + 1)


def _check_gelu(metas, approximate):
    if approximate not in ("none", "tanh"):
        raise OpError("approximate argument must be either none or tanh.")
    return float_only("GeluKernelImpl")(metas)


def _gelu_vjp(g, x, out, approximate):
    """PyTorch's gelu_backward: g times the local derivative, computed first (through the
    decomposition an infinite g met terms of both signs: NaN where PyTorch's is inf)."""
    if approximate == "tanh":
        k = math.sqrt(2 / math.pi)
        t = ((x + x * x * x * 0.044715) * k).tanh()
        local = (t + 1) * 0.5 + x * 0.5 * (1 - t * t) * k * (x * x * (3 * 0.044715) + 1)
    else:
        cdf = ((x * (1 / math.sqrt(2))).erf() + 1) * 0.5
        local = cdf + x * (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))
    return g * local


_unary("gelu", infer=_check_gelu, float_inputs=False, forward=_wide(_gelu_forward),
       vjp=_gelu_vjp,
       decompose=_gelu_decompose, attrs={"approximate": ("str", "none")},
       samples=unary() + (S(F(3, 4), approximate="tanh"),))
def _silu_vjp(g, x, out):
    s = x.sigmoid()  # PyTorch's differentiable silu_backward: g * s * (1 + x * (1 - s))
    return g * (s * (x * (1 - s) + 1))


_unary("silu", infer=float_only("silu_cpu"), float_inputs=False,
       forward=_wide(lambda xp, a: a / (1 + xp.exp(-a))), vjp=_silu_vjp)


def _softplus_forward(xp, a, beta, threshold):
    bx = a * beta  # above the threshold softplus is the identity (PyTorch's rule)
    return xp.where(bx > threshold, a, xp.logaddexp(0, bx) / beta)


_unary("softplus", infer=float_only("softplus_cpu"), float_inputs=False, forward=_softplus_forward,
       vjp=lambda g, x, out, beta, threshold:
               (x * beta > threshold).where(g, g * (x * beta).sigmoid()),
       attrs={"beta": ("float", 1.0), "threshold": ("float", 20.0)},
       samples=unary() + (S(F(3, 4), beta=2.0, threshold=1.0),))
