"""Inverse hyperbolic functions, erfc/erfinv, the gamma family (lgamma, digamma,
polygamma), sinc, logit, degree/radian conversion, atan2 and hypot: PyTorch's functions of
those names, with the derivative formulas of its derivatives.yaml (written with catalog ops,
so they differentiate again).

numpy lacks erfinv and the gamma family's derivatives: SciPy's are used (cupyx.scipy.special
on CuPy); math's erfc and lgamma stand in elementwise where SciPy is missing, and the others
say that they need it.
"""

from __future__ import annotations

import math
from functools import cache, partial

import numpy as np

from . import _batching as _batch
from .elementwise import infer_binary
from .mathfn import infer_float_unary
from .mathfn import opmath as _opmath
from ._registry import GRAD_MODE, define
from ._samples import F, P, S, X, unary
from ._samples import binary as binary_samples
from ._types import DEFAULT_FLOAT, FLOATING, Meta, OpError, torch_dtype_name


@cache
def _special_for(module: str, name: str):
    if module.startswith("cupy"):
        from cupyx.scipy import special
        return getattr(special, name)
    try:
        from scipy import special
        return getattr(special, name)
    except ImportError:  # pragma: no cover - scipy is present in the test environment
        fallback = {"erfc": math.erfc, "gammaln": math.lgamma}.get(name)
        if fallback is None:
            raise OpError(f"{name} needs SciPy on the worker (pip install scipy)") from None
        ufunc = np.frompyfunc(fallback, 1, 1)
        return lambda a: np.asarray(ufunc(a)).astype(a.dtype)


def special(name: str):
    """forward(xp, a): scipy.special.<name>(a) in a's dtype."""
    def forward(xp, a):
        return _special_for(xp.__name__, name)(a).astype(a.dtype, copy=False)
    forward.__name__ = name
    return forward


_unary = partial(define, batch=_batch.elementwise, infer=infer_float_unary, float_inputs=True,
                 samples=unary())


def _within(low: float, high: float):
    return unary(lambda *s: F(*s, low=low, high=high))


_SQRT_PI = math.sqrt(math.pi)
_unary("asinh", ufunc="arcsinh", vjp=lambda g, x, out: g * (x * x + 1).rsqrt())
_unary("acosh", ufunc="arccosh", vjp=lambda g, x, out: g * (x * x - 1).rsqrt(),
       samples=_within(1.2, 3.0))
_unary("atanh", ufunc="arctanh", vjp=lambda g, x, out: g * (1 / (-x * x + 1)),
       samples=_within(-0.9, 0.9))
_unary("erfc", forward=special("erfc"),
       vjp=lambda g, x, out: (-x * x).exp() * (-2 / _SQRT_PI) * g)
_unary("erfinv", forward=special("erfinv"),
       vjp=lambda g, x, out: (out * out).exp() * (0.5 * _SQRT_PI) * g,
       samples=_within(-0.9, 0.9))
# lgamma's poles (0, -1, ...) are kept away from: the samples are positive, and negative
# between two poles
_GAMMA = unary(P) + (S(F(3, 4, low=-1.8, high=-1.2)),)
def _lgamma_forward(xp, a):
    """SciPy's gammaln(-inf) is -inf; PyTorch's lgamma (std::lgamma) is +inf there."""
    return xp.where(a == -xp.inf, a.dtype.type(xp.inf), special("gammaln")(xp, a))


_unary("lgamma", forward=_lgamma_forward, vjp=lambda g, x, out: g * x.digamma(),
       samples=_GAMMA)
_unary("digamma", forward=special("psi"), vjp=lambda g, x, out: g * x.polygamma(n=1),
       samples=_GAMMA)


def trigamma(xp, a):
    """polygamma(1, x) as PyTorch computes it (ATen's calc_trigamma, in a's dtype): the
    reflection below 0.5, six steps of the recurrence, then the asymptotic series. SciPy's
    is more exact; PyTorch's is ~5e-10 off it in float64, and its values are the reference."""
    one = a.dtype.type(1)
    low = a < 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        sin_pi_x = xp.sin(a * a.dtype.type(math.pi))
        result = xp.where(low, -(a.dtype.type(math.pi * math.pi)) / (sin_pi_x * sin_pi_x),
                          a.dtype.type(0))
        x = xp.where(low, one - a, a)
        for _ in range(6):
            result = result + one / (x * x)
            x = x + one
        ixx = one / (x * x)
        tail = (one + one / (2 * x) + ixx * (a.dtype.type(1 / 6) - ixx * (
            a.dtype.type(1 / 30) - ixx * a.dtype.type(1 / 42)))) / x
        result = result + tail
    return xp.where(low, -result, result).astype(a.dtype, copy=False)


def _polygamma_forward(xp, a, n):
    if n == 0:
        return _special_for(xp.__name__, "psi")(a).astype(a.dtype, copy=False)
    if n == 1:
        return trigamma(xp, _opmath(a)).astype(a.dtype, copy=False)
    out = _special_for(xp.__name__, "polygamma")(n, a).astype(a.dtype, copy=False)
    # PyTorch's is n! * zeta(n + 1, x), whose series reads 0 * inf at x = inf: NaN
    return xp.where(a == xp.inf, a.dtype.type(xp.nan), out)


def _infer_polygamma(metas: list[Meta], n) -> Meta:
    if n < 0:
        raise OpError("polygamma(n, x) does not support negative n.")
    return infer_float_unary(metas)


_unary("polygamma", infer=_infer_polygamma, forward=_polygamma_forward,
       vjp=lambda g, x, out, n: g * x.polygamma(n=n + 1), attrs={"n": ("int", 1)},
       samples=(S(P(3, 4), n=1), S(P(), n=2), S(P(0, 3), n=1), S(P(2, 1, 3), n=3),
                S(P(3), n=0)))


def _sinc_forward(xp, a):
    w = _opmath(a)
    pix = w * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        out = xp.sin(pix) / pix
    return xp.where(w == 0, xp.ones((), w.dtype), out).astype(a.dtype, copy=False)


def _sinc_vjp(g, x, out):
    """PyTorch's sinc_backward: g * (pi x cos(pi x) - sin(pi x)) / (x x pi), 0 where that
    denominator is 0 (x = 0, and |x| < ~1e-162 where x x underflows), in its order of
    operations (its second derivative at x = 1e-30 is 0 so)."""
    pix = x * math.pi
    sq_pi = x * x * math.pi
    local = g * (pix * pix.cos() - pix.sin()) / sq_pi
    return (sq_pi == 0).where(0.0, local)


_unary("sinc", forward=_sinc_forward, vjp=_sinc_vjp,
       samples=unary() + (S(X([0.0, 0.5, -1.5]), fd=False, second=False),))


def _logit_forward(xp, a, eps):
    """log(x / (1 - x)): PyTorch's float16 kernel divides in float16 and takes the log in
    float32."""
    if eps is not None:
        a = xp.clip(a, a.dtype.type(eps), a.dtype.type(1 - eps))
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.log(_opmath(a / (1 - a))).astype(a.dtype, copy=False)


def _logit_vjp(g, x, out, eps):
    """PyTorch's two rules. With grad mode (create_graph) its differentiable formula:
    grad / (x (1 - x)) where lo <= x <= hi, else NaN (no eps: [0, 1]) or 0 (eps: the input
    was clamped), NaN failing both tests. Without, logit_backward's kernel: NaN outside
    [0, 1] (no eps) or 0 outside [eps, 1 - eps], grad * inf at 0 and 1 (+inf at -0.0)."""
    local = g / (x * (1 - x))
    lo, hi = (0.0, 1.0) if eps is None else (eps, 1 - eps)
    fill = float("nan") if eps is None else 0.0
    if GRAD_MODE.get():
        return ((x >= lo) & (x <= hi)).where(local, fill)
    local = ((x == 0) | (x == 1)).where(g * float("inf"), local)
    return ((x < lo) | (x > hi)).where(fill, local)


_unary("logit", forward=_logit_forward, vjp=_logit_vjp, attrs={"eps": ("optional_float", None)},
       samples=_within(0.1, 0.9) + (S(F(3, 4, low=0.02, high=0.98), eps=0.2),))

_DEG = math.pi / 180.0
_RAD = 180.0 / math.pi
_unary("deg2rad", forward=lambda xp, a: (_opmath(a) * _DEG).astype(a.dtype, copy=False),
       vjp=lambda g, x, out: g * _DEG)
_unary("rad2deg", forward=lambda xp, a: (_opmath(a) * _RAD).astype(a.dtype, copy=False),
       vjp=lambda g, x, out: g * _RAD)


# --- binary -----------------------------------------------------------------------------
def _infer_float_binary(metas: list[Meta]) -> Meta:
    """Promoted as arithmetic is; integers and bools give the default float (atan2)."""
    out = infer_binary(metas)
    return out if out.dtype in FLOATING else Meta(out.shape, DEFAULT_FLOAT, out.weak)


def _floats(a, b):
    """The engine casts the inputs to their promoted type: an integer one is then made the
    default float, as PyTorch computes atan2 of integers."""
    if a.dtype.kind not in "f":
        a, b = a.astype(DEFAULT_FLOAT), b.astype(DEFAULT_FLOAT)
    return a, b


def _atan2_forward(xp, a, b):
    return xp.arctan2(*_floats(a, b))


def _atan2_vjp(which: int):
    def rule(g, x, y, out):
        # PyTorch's atan2_backward zeroes an infinite 1 / (x^2 + y^2) (at the origin, or
        # where the squares underflow): the gradient there is 0, not NaN or inf
        recip = (x * x + y * y).reciprocal()
        recip = recip.isinf().logical_not().where(recip, 0.0)
        return g * y * recip if which == 0 else g * -x * recip
    return rule


def _infer_hypot(metas: list[Meta]) -> Meta:
    out = infer_binary(metas)
    if out.dtype not in FLOATING:
        raise OpError(f'"hypot_cpu" not implemented for \'{torch_dtype_name(out.dtype)}\'')
    return out


_binary = partial(define, batch=_batch.elementwise, nin=2, promote=True,
                  samples=binary_samples())
_binary("atan2", infer=_infer_float_binary, forward=_atan2_forward,
        vjp=(_atan2_vjp(0), _atan2_vjp(1)))
_binary("hypot", infer=_infer_hypot, ufunc="hypot",
        vjp=(lambda g, x, y, out: g * x / out, lambda g, x, y, out: g * y / out))
