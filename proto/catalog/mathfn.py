"""Unary math functions and activations. Integer inputs give the default float dtype,
as in PyTorch. Ops whose derivative PyTorch fuses (tanh, sigmoid) get a fused backward op
of their own, itself differentiable, so training steps run one kernel per derivative."""

from __future__ import annotations

import math

from ._registry import OpDef, register
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


def unary_op(name, fwd, rule, torch_name, samples=unary(), attrs=None, decompose=None,
             infer=infer_float_unary, ufunc=None, fusable=False):
    # numpy would compute ints in float64; PyTorch gives the default float dtype, so the
    # engine casts integer inputs first (float_inputs) and fwd sees floats only.
    return register(OpDef(name, 1, infer, fwd, None if rule is None else (rule,),
                          attrs=attrs or {}, torch_name=torch_name, samples=samples,
                          decompose=decompose, float_inputs=infer is infer_float_unary,
                          ufunc=ufunc, fusable=fwd if fusable is True else fusable or None))


_LN2 = math.log(2.0)
_LN10 = 2.3025850929940456  # PyTorch's literal for log10's rule (math.log(10) is 1 ulp off)
unary_op("exp", lambda xp, a: xp.exp(a), lambda g, x, out: g * out, "ExpBackward0", ufunc="exp")
unary_op("log", lambda xp, a: xp.log(a), lambda g, x, out: g / x, "LogBackward0", unary(P),
         ufunc="log")
unary_op("log1p", lambda xp, a: xp.log1p(a), lambda g, x, out: g / (x + 1), "Log1PBackward0",
         unary(P), ufunc="log1p")
unary_op("expm1", lambda xp, a: xp.expm1(a), lambda g, x, out: g * (out + 1),
         "Expm1Backward0", ufunc="expm1")
unary_op("log2", lambda xp, a: xp.log2(a), lambda g, x, out: g / (x * _LN2),
         "Log2Backward0", unary(P), ufunc="log2")
unary_op("sqrt", lambda xp, a: xp.sqrt(a), lambda g, x, out: g / (out * 2), "SqrtBackward0",
         unary(P), ufunc="sqrt")
unary_op("rsqrt", lambda xp, a: 1 / xp.sqrt(a), lambda g, x, out: g * out * out * out * -0.5,
         "RsqrtBackward0", unary(P), fusable=True)
unary_op("reciprocal", lambda xp, a: 1 / a, lambda g, x, out: -g * out * out,
         "ReciprocalBackward0", unary(P) + (S(F(3, 4, low=-2.0, high=-0.5)),), fusable=True)
unary_op("sin", lambda xp, a: xp.sin(a), lambda g, x, out: g * x.cos(), "SinBackward0",
         ufunc="sin")
unary_op("cos", lambda xp, a: xp.cos(a), lambda g, x, out: -g * x.sin(), "CosBackward0",
         ufunc="cos")
unary_op("tan", lambda xp, a: xp.tan(a), lambda g, x, out: g * (out * out + 1),
         "TanBackward0", unary(lambda *s: F(*s, low=-1.2, high=1.2)), ufunc="tan")
unary_op("log10", lambda xp, a: xp.log10(a), lambda g, x, out: g / (x * _LN10),
         "Log10Backward0", unary(P), ufunc="log10")
unary_op("exp2", lambda xp, a: xp.exp2(a), lambda g, x, out: g * out * _LN2,
         "Exp2Backward0", ufunc="exp2")
# Inverse trigonometric and hyperbolic functions, with PyTorch's formulas (its second
# derivatives differentiate these): asin' = rsqrt(1 - x^2), acos' = -asin', atan' = 1/(1+x^2).
_OPEN_UNIT = unary(lambda *s: F(*s, low=-0.9, high=0.9))
unary_op("asin", lambda xp, a: xp.arcsin(a), lambda g, x, out: g * (-x * x + 1).rsqrt(),
         "AsinBackward0", _OPEN_UNIT, ufunc="arcsin")
unary_op("acos", lambda xp, a: xp.arccos(a), lambda g, x, out: g * -((-x * x + 1).rsqrt()),
         "AcosBackward0", _OPEN_UNIT, ufunc="arccos")
unary_op("atan", lambda xp, a: xp.arctan(a), lambda g, x, out: g / (x * x + 1),
         "AtanBackward0", ufunc="arctan")
unary_op("sinh", lambda xp, a: xp.sinh(a), lambda g, x, out: g * x.cosh(), "SinhBackward0",
         ufunc="sinh")
unary_op("cosh", lambda xp, a: xp.cosh(a), lambda g, x, out: g * x.sinh(), "CoshBackward0",
         ufunc="cosh")
unary_op("tanh", lambda xp, a: xp.tanh(a), lambda g, x, out: g.tanh_backward(out),
         "TanhBackward0", ufunc="tanh")
unary_op("sigmoid", lambda xp, a: 1 / (1 + xp.exp(-a)),
         lambda g, x, out: g.sigmoid_backward(out), "SigmoidBackward0", fusable=True)
unary_op("erf", erf, lambda g, x, out: g * (-x * x).exp() * (2 / math.sqrt(math.pi)),
         "ErfBackward0")


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
register(OpDef("tanh_backward", 2, _binary_same, _tanh_bw,
               (lambda h, g, y, out: h * (1 - y * y), lambda h, g, y, out: h * g * y * -2),
               torch_name="TanhBackwardBackward0", promote=True, samples=_BW_SAMPLES,
               fusable=lambda xp, g, y: g * (1 - y * y)))
register(OpDef("sigmoid_backward", 2, _binary_same, _sigmoid_bw,
               (lambda h, g, y, out: h * y * (1 - y),
                lambda h, g, y, out: h * g * (1 - y * 2)),
               torch_name="SigmoidBackwardBackward0", promote=True, samples=_BW_SAMPLES,
               fusable=lambda xp, g, y: g * y * (1 - y)))



def _threshold_bw(xp, g, y, threshold):
    return xp.where(y <= threshold, 0, g)  # a NaN output passes the gradient, as aten's


def _threshold_bw_forward(xp, g, y, threshold):
    return zero_where(xp, y <= threshold, g)


# threshold_backward(grad_output, output, threshold): grad_output where output > threshold,
# else 0, as aten's (relu's rule). Its derivative in `output` is zero, yet the result
# depends on it, as in PyTorch: a relu's gradient made with create_graph requires grad, and
# its second derivative is zeros, not "does not require grad".
register(OpDef("threshold_backward", 2, _binary_same, _threshold_bw_forward,
               (lambda h, g, y, out, threshold: h.threshold_backward(y, threshold=threshold),
                lambda h, g, y, out, threshold: y.full_like(0.0)),
               attrs={"threshold": ("float", 0.0)}, torch_name="ThresholdBackwardBackward0",
               promote=True, fusable=_threshold_bw,
               samples=_BW_SAMPLES + (S(F(4), X([float("nan"), -0.0, 0.5, -1.0]), fd=False),)))

# --- activations ------------------------------------------------------------------------
_KINK = unary()  # random inputs: the chance of one within 1e-6 of the kink is nil
# where, not maximum: relu(-0.0) is -0.0 in PyTorch (only values below 0 are replaced)
unary_op("relu", lambda xp, a: zero_where(xp, a < 0, a),
         lambda g, x, out: g.threshold_backward(out, threshold=0.0),
         "ReluBackward0", _KINK + (S(X([-0.0, float("nan"), 1.0, -1.0]), fd=False),),
         infer=_infer_relu, fusable=lambda xp, a: xp.where(a < 0, 0, a))
def _leaky_bw(xp, g, x, negative_slope):
    return xp.where(x > 0, g, g * negative_slope)


# leaky_relu_backward(grad_output, input, slope), as aten's: like threshold_backward, zero
# in its input but depending on it (a create_graph gradient requires grad, as in PyTorch).
register(OpDef("leaky_relu_backward", 2, _binary_same, _leaky_bw,
               (lambda h, g, x, out, negative_slope:
                    h.leaky_relu_backward(x, negative_slope=negative_slope),
                lambda h, g, x, out, negative_slope: x.full_like(0.0)),
               attrs={"negative_slope": ("float", 0.01)},
               torch_name="LeakyReluBackwardBackward0", promote=True, fusable=_leaky_bw,
               samples=_BW_SAMPLES + (S(F(3), F(3), negative_slope=0.2),)))
unary_op("leaky_relu", lambda xp, a, negative_slope: xp.where(a > 0, a, a * negative_slope),
         lambda g, x, out, negative_slope:
             g.leaky_relu_backward(x, negative_slope=negative_slope),
         "LeakyReluBackward0", _KINK + (S(F(3, 4), negative_slope=0.2),),
         attrs={"negative_slope": ("float", 0.01)}, infer=float_only("leaky_relu_cpu"),
         fusable=True)
# where, not minimum: elu(-0.0) is -0.0 as in PyTorch (alpha * expm1(-0.0))
unary_op("elu", lambda xp, a, alpha: xp.where(a > 0, a, alpha * xp.expm1(xp.where(a > 0, 0, a))),
         # PyTorch's elu_backward of the input: alpha e^x where x <= 0 (so a NaN takes g),
         # read from x, not the result; its own derivative is 0 at x = 0 (PyTorch's)
         lambda g, x, out, alpha: (x < 0).where(g * alpha * x.exp(),
                                                (x == 0).where(g * alpha, g)),
         "EluBackward0", _KINK + (S(F(3, 4), alpha=0.5),),
         attrs={"alpha": ("float", 1.0)}, infer=float_only("elu_cpu"))


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


unary_op("gelu", _gelu_forward, _gelu_vjp, "GeluBackward0",
         unary() + (S(F(3, 4), approximate="tanh"),), attrs={"approximate": ("str", "none")},
         decompose=_gelu_decompose, infer=_check_gelu)
def _silu_vjp(g, x, out):
    s = x.sigmoid()  # PyTorch's differentiable silu_backward: g * s * (1 + x * (1 - s))
    return g * (s * (x * (1 - s) + 1))


unary_op("silu", lambda xp, a: a / (1 + xp.exp(-a)), _silu_vjp, "SiluBackward0",
         infer=float_only("silu_cpu"))


def _softplus_forward(xp, a, beta, threshold):
    bx = a * beta  # above the threshold softplus is the identity (PyTorch's rule)
    return xp.where(bx > threshold, a, xp.logaddexp(0, bx) / beta)


unary_op("softplus", _softplus_forward,
         lambda g, x, out, beta, threshold:
             (x * beta > threshold).where(g, g * (x * beta).sigmoid()),
         "SoftplusBackward0",
         unary() + (S(F(3, 4), beta=2.0, threshold=1.0),),
         attrs={"beta": ("float", 1.0), "threshold": ("float", 20.0)},
         infer=float_only("softplus_cpu"))
