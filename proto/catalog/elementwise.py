"""Elementwise arithmetic, comparison and logic, with broadcasting and PyTorch's type
promotion (weak Python scalars included). Broadcasting in derivatives is undone by the
engine (one `unbroadcast`), never inside a rule. Comparisons and logic ops give bool
results and are not differentiable (vjp=None)."""

from __future__ import annotations

from functools import partial

import numpy as np

from ._checks import fail_if
from ._fma import fma64, fused32, round32
from ._int_power import int_power, whole_exponent
from . import _batching as _batch
from ._registry import define, sgn
from ._samples import B, C, F, I, P, S, X
from ._samples import binary as binary_samples
from ._types import (
    DEFAULT_FLOAT,
    FLOATING,
    Meta,
    OpError,
    broadcast_shapes,
    promote_types,
    result_type,
    scalar_meta,
    torch_dtype_name,
)


def broadcast_all(metas: list[Meta]) -> tuple[int, ...]:
    shape: tuple[int, ...] = ()
    for m in metas:
        shape = broadcast_shapes(shape, m.shape)
    return shape


def infer_binary(metas: list[Meta]) -> Meta:
    if all(m.weak for m in metas):  # arithmetic on Python scalars stays a full-precision scalar
        return Meta((), promote_types(metas[0].dtype, metas[1].dtype), weak=True)
    return Meta(broadcast_all(metas), result_type(metas))


def refuse_bool_sub(dtypes) -> None:
    """PyTorch's refusal of a subtraction with bool operands (also inside composites that
    subtract: l1_loss, bce_with_logits' 1 - target)."""
    bools = [d == "bool" for d in dtypes]
    if all(bools):
        raise OpError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                      "Use the `^` or `logical_xor()` operator instead.")
    if any(bools):  # one bool operand, tensor or Python bool, is refused as well
        raise OpError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                      "If you are trying to invert a mask, use the `~` or `logical_not()` "
                      "operator instead.")


def _no_bool_sub(metas: list[Meta]) -> Meta:
    out = infer_binary(metas)
    refuse_bool_sub([m.dtype for m in metas])
    return out


def _infer_div(metas: list[Meta], rounding_mode) -> Meta:
    if rounding_mode not in (None, "trunc", "floor"):
        raise OpError("div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                      f"but found '{rounding_mode}'")
    out = infer_binary(metas)
    if rounding_mode is None and out.dtype not in FLOATING:
        return Meta(out.shape, DEFAULT_FLOAT)
    return _no_bool_kernel(f"div_{rounding_mode}_cpu", out)


def _no_bool_kernel(kernel: str, out: Meta) -> Meta:
    """Integer division and remainders have no bool kernel in PyTorch."""
    if out.dtype == "bool":
        raise OpError(f'"{kernel}" not implemented for \'Bool\'')
    return out


def infer_compare(metas: list[Meta]) -> Meta:
    return Meta(broadcast_all(metas), "bool")


def nonzero_divisor(xp, a, b) -> None:
    """Integer division by zero is an error in PyTorch (numpy gives 0 and a warning); over
    nothing (an empty operand) no kernel runs, so nothing is divided."""
    if b.dtype.kind in "iu" and a.size and b.size:
        fail_if(xp, b == 0, ZeroDivisionError, "ZeroDivisionError")


def _div_forward(xp, a, b, rounding_mode):
    if rounding_mode is None:
        return xp.true_divide(a, b)
    nonzero_divisor(xp, a, b)
    if rounding_mode == "floor":
        return xp.floor_divide(a, b)
    if a.dtype.kind == "f":
        return xp.trunc(xp.true_divide(a, b))
    q = xp.floor_divide(a, b)  # integer truncation: floor, plus one where signs differ
    return q + ((xp.remainder(a, b) != 0) & ((a < 0) != (b < 0)))


# --- derivative rules ---------------------------------------------------------------------
# A rounded division's gradient is zero, written g * 0 as PyTorch's rule (so it depends on
# g: a create_graph gradient through it requires grad, and a NaN or inf seed stays NaN).
# A rounded quotient's gradient is PyTorch's zeros_like(grad): a constant, not g * 0 (which
# would require grad under create_graph and turn a NaN or inf seed into NaN).
def _div_x(g, x, y, out, rounding_mode):
    return g / y if rounding_mode is None else g.full_like(0.0)


def _div_y(g, x, y, out, rounding_mode):
    # PyTorch's -g * ((x / y) / y): finite where y is infinite at every order (x / y^2
    # made inf / inf of its derivative there), and ending with a mul as PyTorch's
    return -g * (x / y / y) if rounding_mode is None else g.full_like(0.0)


def _number(s):
    """The Python number a rule's operand holds (a const node), or None for a tensor."""
    return s.g.attrs[s.id]["value"] if s.g.ops[s.id] == "const" else None


def _pow_x(g, x, y, out):
    # d/dx x^y = y x^(y-1), defined as 0 where y == 0 (PyTorch masks it the same way), in
    # PyTorch's order g * (y * x^(y-1)). For the number 0 PyTorch's rule is zeros_like(x),
    # a constant: the masked branch would give a second derivative of 0 * inf (NaN) where
    # x^-2 overflows.
    if _number(y) == 0:
        return x.full_like(0.0)
    return (y == 0).where(0.0, g * (y * x ** (y - 1)))


def _pow_y(g, x, y, out):
    # d/dy x^y = x^y log x, defined as 0 where x == 0 and y >= 0. The mask is applied to
    # the local derivative and g multiplies it last, as PyTorch's formula: a NaN or inf
    # seed there stays NaN (a second derivative through 0.0 ** y is NaN, not 0).
    # log of x in the result's dtype (a Python int base or int tensor would log in float32)
    lx = (x if x.dtype == out.dtype else x.cast(dtype=out.dtype)).log()
    return g * ((x == 0) & (y >= 0)).where(0.0, out * lx)


def _max_rule(g, x, y, loses):
    """maximum/minimum: ties split the gradient evenly; otherwise an input gets it unless
    it strictly lost, so where a NaN meets a number both get it (PyTorch's rule)."""
    return (x == y).where(g / 2, loses.where(0.0, g))


# Binary arithmetic: two inputs, cast to their result type (PyTorch's promotion).
_binary = partial(define, batch=_batch.elementwise, nin=2, infer=infer_binary, promote=True,
                  samples=binary_samples())


_SCALAR_SAMPLES = (S(F(3, 4), C(2.5)), S(C(3), F(2, 3)))

# --- arithmetic -------------------------------------------------------------------------
def _fused(xp, a, b, alpha):
    """a + alpha * b as PyTorch's kernel computes it for floats: one fma (float16 in
    float32, alpha rounded to float16 first), float32's emulated in float64, where the
    product of two float32 values is exact, float64's by fma64; other dtypes as written."""
    if xp.__name__ == "numpy" and a.dtype.name == "float64":
        return fma64(alpha, b, a)
    if xp.__name__ != "numpy" or a.dtype.name not in ("float16", "float32"):
        return a + alpha * b
    k = float(a.dtype.type(alpha)) if a.dtype.name == "float16" else float(np.float32(alpha))
    return fused32(lambda a, b: a + k * b, a, b).astype(a.dtype, copy=False)


_binary("add", infer=lambda m, alpha: infer_binary(m), ufunc="add",
        forward=lambda xp, a, b, alpha: a + b if alpha == 1 else _fused(xp, a, b, alpha),
        vjp=(lambda g, x, y, out, alpha: g,
             lambda g, x, y, out, alpha: g * alpha if alpha != 1 else g),
        attrs={"alpha": ("scalar", 1)},
        samples=binary_samples() + _SCALAR_SAMPLES + (S(F(3), F(2, 3), alpha=2.0),))
_binary("sub", infer=lambda m, alpha: _no_bool_sub(m), ufunc="subtract",
        forward=lambda xp, a, b, alpha: a - b if alpha == 1 else _fused(xp, a, b, -alpha),
        vjp=(lambda g, x, y, out, alpha: g,
             lambda g, x, y, out, alpha: -g * alpha if alpha != 1 else -g),
        attrs={"alpha": ("scalar", 1)},
        samples=binary_samples() + _SCALAR_SAMPLES + (S(F(3), F(2, 3), alpha=0.5),))
_binary("mul", ufunc="multiply",
        vjp=(lambda g, x, y, out: g * y, lambda g, x, y, out: g * x),
        samples=binary_samples() + _SCALAR_SAMPLES)
_binary("div", infer=_infer_div, ufunc="true_divide", forward=_div_forward,
        vjp=(_div_x, _div_y),
        attrs={"rounding_mode": ("optional_str", None)},
        samples=binary_samples(F, P) + (S(F(3, 4), C(2.5)), S(C(3.0), P(2, 3)),
                                S(F(3, 4), P(4), rounding_mode="floor"),
                                S(F(3, 4), P(4), rounding_mode="trunc")))
def _infer_pow(metas):
    out = infer_binary(metas)
    if out.dtype == "bool" and not (metas[1].weak and metas[1].dtype == "bool"):
        raise OpError('"pow" not implemented for \'Bool\'')  # bool ** True is bool
    return out


def _power(xp, a, b):
    out = xp.power(a, b)
    if xp.__name__ == "numpy" and b.size == 1 and b.reshape(-1)[0] == 0.5:
        # numpy takes sqrt for an exponent of one element 0.5: -0.0 at -0.0, NaN at -inf.
        # A tensor exponent is PyTorch's std::pow (+0.0, inf); a number exponent 0.5 is
        # sqrt there too, and the engine runs it so (autodiff._small_power).
        out = xp.where(xp.isneginf(a), xp.inf, out) + 0
    return out


def _pow_forward(xp, a, b):
    if a.dtype.kind != "i":
        k = whole_exponent(a, b)  # x ** 4 ... x ** 16 on the host: exact products
        return _power(xp, a, b) if k is None else int_power(a, k)
    # numpy refuses negative integer exponents; PyTorch gives 1 for a base of 1, +-1 for
    # -1 (by the exponent's parity) and 0 for any other base. (A Python int exponent < 0
    # is refused by the SDK at the call, as PyTorch refuses it.)
    neg = b < 0  # (no `if neg.any()`: on a device that would wait for it at this op)
    out = xp.power(a, xp.where(neg, 0, b))
    odd = (b & 1) == 1
    small = xp.where(a == 1, 1, xp.where(a == -1, xp.where(odd, -1, 1), 0))
    return xp.where(neg, small, out).astype(out.dtype, copy=False)


# No `ufunc`: the engine would then call xp.power directly, integers included.
_binary("pow", infer=_infer_pow, forward=_pow_forward, vjp=(_pow_x, _pow_y),
        samples=binary_samples(P, F) + (S(F(3, 4), C(3)), S(P(3, 4), C(2.5)),
                                S(C(2.0), F(2, 3)), S(P(3, 4), C(-1.5))))
# lerp(start, end, weight) with PyTorch's formula: from start for |weight| < 0.5, from end
# otherwise (so lerp(inf, 0.13, inf) is -inf, not inf - inf). The SDK's lerp checks the
# dtypes and names the node LerpBackward0/1 (the catalog keeps `lerp` free for it).
def _lerp_plain(xp, a, b, w):
    d = b - a
    return xp.where(xp.abs(w) < 0.5, a + w * d, b - d * (1 - w))


def _lerp_forward(xp, a, b, w):
    """PyTorch's float32 kernel fuses each product and sum (fma): emulated in float64, where
    the product of two float32 values is exact (one rounding to float32, as fma's); its
    float16 is float32 rounded once (the engine hands float16 lerp over in float32)."""
    if xp.__name__ == "numpy" and a.dtype.name == "float64":
        d = b - a
        return np.where(np.abs(w) < 0.5, fma64(w, d, a), fma64(-d, 1 - w, b))
    if xp.__name__ != "numpy" or a.dtype.name not in ("float16", "float32"):
        return _lerp_plain(xp, a, b, w)
    if a.dtype.name == "float16":
        return _lerp_forward(xp, *(x.astype("float32") for x in (a, b, w))).astype(a.dtype)
    one_minus = (1 - w).astype("float32")  # in float32, as the kernel's 1 - weight

    def fused(a, b, w, one_minus):
        d = round32(b - a)
        return np.where(np.abs(w) < 0.5, a + w * d, b - d * one_minus)
    return fused32(fused, a, b, w, one_minus)


define("lerp_kernel",
       batch=_batch.elementwise,
       nin=3, infer=lambda metas: Meta(broadcast_all(metas), result_type(metas)),
       forward=_lerp_forward,
       vjp=(lambda g, a, b, w, out: g * (1 - w), lambda g, a, b, w, out: g * w,
            lambda g, a, b, w, out: g * (b - a)), promote=True, fusable=_lerp_plain,
       samples=(S(F(3, 4), F(3, 4), F(3, 4)), S(F(3), F(2, 3), C(0.3)),
                S(F(2, 3), F(3), C(0.7)), S(F(), F(3), F(2, 1)),
                S(X([float("inf"), -float("inf"), 1.0]), X([0.13, 0.13, 2.0]),
                  X([float("inf"), -float("inf"), 0.6]), fd=False)))
def _addcdiv_plain(xp, a, b, c, value):
    return a + value * b / c  # PyTorch's kernel: (value * tensor1) / tensor2, then + input


def _addcdiv_forward(xp, a, b, c, value):
    if a.dtype.name != "float16":
        return _addcdiv_plain(xp, a, b, c, value)
    # float16 in float32 (value too), rounded once, as PyTorch's kernel
    wide = (x.astype("float32") for x in (a, b, c))
    return _addcdiv_plain(xp, *wide, value).astype(a.dtype)


# addcdiv(input, tensor1, tensor2, value) with PyTorch's own rules (not div's: its second
# order differs where tensor2 is 0, inf / 0 against div's (x / y) / y).
define("addcdiv_kernel",
       batch=_batch.elementwise,
       nin=3, infer=lambda metas, value: Meta(broadcast_all(metas), result_type(metas)),
       forward=_addcdiv_forward,
       vjp=(lambda g, a, b, c, out, value: g,
            lambda g, a, b, c, out, value: g * (value / c),
            lambda g, a, b, c, out, value: -g * (value * b / (c * c))),
       attrs={"value": ("float", 1.0)}, promote=True, fusable=_addcdiv_plain,
       samples=(S(F(3, 4), F(3, 4), P(3, 4)), S(F(3), F(2, 3), P(2, 1), value=-0.5),
                S(F(), F(3), P(3), value=2.0)))
def _addcmul_plain(xp, a, b, c, value):
    return a + value * b * c


def _addcmul_forward(xp, a, b, c, value):
    """PyTorch's kernel: input + (value * tensor1) * tensor2, the last product and the sum
    fused (fma) in float32, float16 in float32 with value in float32: emulated in float64
    (the product of two float32 values is exact there)."""
    if xp.__name__ == "numpy" and a.dtype.name == "float64":
        return fma64(value * b, c, a)
    if xp.__name__ != "numpy" or a.dtype.name not in ("float16", "float32"):
        return _addcmul_plain(xp, a, b, c, value)
    v = float(np.float32(value))
    wide = (x.astype("float32", copy=False) for x in (a, b, c))
    out = fused32(lambda a, b, c: a + round32(v * b) * c, *wide)
    return out.astype(a.dtype, copy=False)


# addcmul(input, tensor1, tensor2, value): one kernel, as PyTorch's (the SDK's composite of
# mul and add rounded twice); PyTorch's derivatives grad * tensor2 * value and so on.
define("addcmul_kernel",
       batch=_batch.elementwise,
       nin=3, infer=lambda metas, value: Meta(broadcast_all(metas), result_type(metas)),
       forward=_addcmul_forward,
       vjp=(lambda g, a, b, c, out, value: g,
            lambda g, a, b, c, out, value: g * c * value,
            lambda g, a, b, c, out, value: g * b * value),
       attrs={"value": ("scalar", 1)}, promote=True, fusable=_addcmul_plain,
       samples=(S(F(3, 4), F(3, 4), F(3, 4)), S(F(3), F(2, 3), F(2, 1), value=-0.5),
                S(F(), F(3), F(3), value=2.0)))
# Ties split the gradient; a NaN against a number passes it to both.
_TIES = (S(X([1.0, 2.0, 3.0]), X([1.0, 5.0, 3.0]), fd=False),
         S(X([1.0, float("nan"), 2.0, 3.0]), X([1.0, 1.0, float("nan"), 0.0]), fd=False))
_binary("maximum", ufunc="maximum",
        vjp=(lambda g, x, y, out: _max_rule(g, x, y, x < y),
             lambda g, x, y, out: _max_rule(g, x, y, y < x)), samples=binary_samples() + _TIES)
_binary("minimum", ufunc="minimum",
        vjp=(lambda g, x, y, out: _max_rule(g, x, y, x > y),
             lambda g, x, y, out: _max_rule(g, x, y, y > x)), samples=binary_samples() + _TIES)
# remainder takes the divisor's sign (Python's %), fmod the dividend's (C's fmod).
def _fmod(xp, a, b):
    nonzero_divisor(xp, a, b)
    return xp.fmod(a, b)


def _remainder(xp, a, b):
    """Python's %: the divisor's sign. For floats from fmod, as PyTorch computes it, so a
    zero keeps the dividend's sign (numpy's remainder gives -0.0 % 2 as +0.0)."""
    if a.dtype.kind != "f":
        nonzero_divisor(xp, a, b)
        return xp.remainder(a, b)
    m = xp.fmod(a, b)
    return xp.where((m != 0) & ((m < 0) != (b < 0)), m + b, m)


_binary("remainder", infer=lambda metas: _no_bool_kernel("remainder_cpu", infer_binary(metas)),
        forward=_remainder,
        vjp=(lambda g, x, y, out: g,
             lambda g, x, y, out: -g * x.div(y, rounding_mode="floor")),
        samples=(S(F(3, 4, low=-5, high=5), P(4)),
                 S(F(2, 3, low=-5, high=5), C(1.5))))
_binary("fmod", infer=lambda metas: _no_bool_kernel("fmod_cpu", infer_binary(metas)),
        forward=_fmod,
        vjp=(lambda g, x, y, out: g,
             lambda g, x, y, out: -g * x.div(y, rounding_mode="trunc")),
        samples=(S(F(3, 4, low=-5, high=5), P(4)),
                 S(F(2, 3, low=-5, high=5), C(1.5))))


def _infer_neg(metas):
    if metas[0].dtype == "bool":
        raise OpError("Negation, the `-` operator, on a bool tensor is not supported. If you "
                      "are trying to invert a mask, use the `~` or `logical_not()` operator "
                      "instead.")
    return Meta(metas[0].shape, metas[0].dtype, metas[0].weak)


_UNARY = (S(F()), S(F(3, 4)), S(F(0, 3)), S(F(2, 1, 3)))
define("neg",
       batch=_batch.elementwise,
       infer=_infer_neg, ufunc="negative", vjp=lambda g, x, out: -g, samples=_UNARY)


def _infer_abs(metas):
    if metas[0].dtype == "bool":
        raise OpError('"abs_cpu" not implemented for \'Bool\'')
    return Meta(metas[0].shape, metas[0].dtype)


define("abs",
       batch=_batch.elementwise,
       infer=_infer_abs, ufunc="absolute", vjp=lambda g, x, out: g * sgn(x),
       samples=_UNARY)


def _sign_of_number(xp, a):
    return xp.where(xp.isnan(a), 0, xp.sign(a))  # PyTorch's sign of NaN is 0, numpy's NaN


def _sign(xp, a):
    if a.dtype == bool:  # PyTorch's sign of a bool is itself; numpy has no bool sign
        return a.copy()
    return _sign_of_number(xp, a)


# sign's derivative is zeros, passed on (not dropped) as PyTorch does: a later rule whose
# local derivative is NaN or inf then makes NaN of it there, as there.
define("sign",
       batch=_batch.elementwise,
       infer=lambda m: Meta(m[0].shape, m[0].dtype), forward=_sign,
       vjp=lambda g, x, out: x.full_like(0.0),
       fusable=_sign_of_number,  # (abs's rule: g * sign(x), in elementwise chains)
       samples=_UNARY + (S(X([float("nan"), -0.0, 0.0, -2.0, float("inf")]),
                           fd=False),))


# --- rounding (floor, ceil, trunc, round) -------------------------------------------------
# An integer input is its own rounding (PyTorch returns it unchanged, in its dtype); bool
# has no kernel. The derivative is zero everywhere (PyTorch's zeros_like(grad)), written
# as sign's is. No `ufunc`: the engine would call it on integers too, and CuPy's floor of
# an int64 array is float64 (numpy's keeps int64).
def _no_bool_rounding(kernel: str):
    def infer(metas: list[Meta], **_) -> Meta:
        if metas[0].dtype == "bool":
            raise OpError(f'"{kernel}" not implemented for \'Bool\'')
        return Meta(metas[0].shape, metas[0].dtype)
    return infer


def _rounded(ufunc: str):
    """forward(xp, a) = xp.<ufunc>(a) for floats, a fresh copy of an integer input. The
    dtype test is Python-level: inside cupy.fuse it is decided while tracing."""
    def forward(xp, a):
        return getattr(xp, ufunc)(a) if a.dtype.kind == "f" else xp.positive(a)
    return forward


_ROUNDING = (S(F(low=-3.0, high=3.0)), S(F(3, 4, low=-3.0, high=3.0)), S(F(0, 3)),
             S(F(2, 1, 3, low=-3.0, high=3.0)), S(I((3, 4), 10, -10)),
             S(X([0.5, 1.5, 2.5, -0.5, -2.5, -0.0, 0.0, float("nan"), float("inf"),
                  -float("inf"), 1e30, -1e-30]), fd=False))
_FLOOR, _CEIL, _TRUNC = _rounded("floor"), _rounded("ceil"), _rounded("trunc")
define("floor",
       batch=_batch.elementwise,
       infer=_no_bool_rounding("floor_vml_cpu"), forward=_FLOOR, fusable=_FLOOR,
       vjp=lambda g, x, out: x.full_like(0.0), samples=_ROUNDING)
define("ceil",
       batch=_batch.elementwise,
       infer=_no_bool_rounding("ceil_vml_cpu"), forward=_CEIL, fusable=_CEIL,
       vjp=lambda g, x, out: x.full_like(0.0), samples=_ROUNDING)
define("trunc",
       batch=_batch.elementwise,
       infer=_no_bool_rounding("trunc_vml_cpu"), forward=_TRUNC, fusable=_TRUNC,
       vjp=lambda g, x, out: x.full_like(0.0), samples=_ROUNDING)


def _infer_round(metas: list[Meta], decimals) -> Meta:
    m = metas[0]
    if m.dtype not in FLOATING and (decimals is not None or m.dtype == "bool"):
        # PyTorch's round.decimals has float kernels only; decimals=0 runs round's own
        kernel = "round_vml_cpu" if decimals in (None, 0) else "round_cpu"
        raise OpError(f'"{kernel}" not implemented for \'{torch_dtype_name(m.dtype)}\'')
    return Meta(m.shape, m.dtype)


def _round(xp, a, decimals):
    """Half to even, as PyTorch's round. With decimals, PyTorch's formula in the input's
    opmath type (float for float16): rint(a * 10^d) / 10^d, or rint(a / 10^-d) * 10^-d."""
    if decimals is None or decimals == 0:
        return xp.rint(a) if a.dtype.kind == "f" else xp.positive(a)
    work = a.astype("float32") if a.dtype.itemsize < 4 else a
    scale = 10.0 ** abs(decimals)  # a Python float: weak, it takes the array's dtype
    out = xp.rint(work * scale) / scale if decimals > 0 else xp.rint(work / scale) * scale
    return out.astype(a.dtype, copy=False)


# decimals=None is PyTorch's round(x) (RoundBackward0, integers allowed); any int, 0
# included, its round.decimals overload (RoundBackward1, floats only): the SDK names it.
define("round", batch=_batch.elementwise, infer=_infer_round, forward=_round,
       vjp=lambda g, x, out, decimals: x.full_like(0.0),
       attrs={"decimals": ("optional_int", None)},
       fusable=_round,  # (a cast inside cupy.fuse that fails falls back unfused)
       samples=_ROUNDING + (S(F(3, 4, low=-5.0, high=5.0), decimals=1),
                            S(F(2, 3, low=-500.0, high=500.0), decimals=-2),
                            S(F(3), decimals=0),
                            S(X([1.25, 0.05, 2.675, -0.35, 1234.5678, -0.04, float("nan"),
                                 float("inf")]), decimals=2, fd=False),
                            S(X([0.5, 1.25, -2.5, -0.04, 1234.5678]), decimals=1, fd=False),
                            S(X([150.0, 250.0, -40.0, 1234.5678]), decimals=-2, fd=False)))


def _infer_clamp(metas, min, max):  # noqa: A002  (PyTorch's argument names)
    if min is None and max is None:
        raise OpError("torch.clamp: At least one of 'min' or 'max' must not be None")
    extra = [scalar_meta(v) for v in (min, max) if v is not None]
    return Meta(metas[0].shape, result_type([metas[0], *extra]))


def _clamp_forward(xp, a, min, max):  # noqa: A002
    # A bound replaces only the values beyond it: at a tie the value stays (PyTorch keeps
    # 0.0 under min=-0.0, where numpy's maximum may give -0.0), and NaN stays NaN.
    if min is not None:
        a = xp.where(a < min, min, a)
    if max is not None:
        a = xp.where(a > max, max, a)
    return a


def _clamp_vjp(g, x, out, min, max):  # noqa: A002
    inside = None
    if min is not None:
        inside = x >= min
    if max is not None:
        inside = (x <= max) if inside is None else inside & (x <= max)
    return inside.where(g, 0.0)


define("clamp",
       batch=_batch.elementwise,
       infer=_infer_clamp, forward=_clamp_forward, vjp=_clamp_vjp,
       attrs={"min": ("optional_scalar", None), "max": ("optional_scalar", None)},
       samples=(S(F(3, 4), min=-0.5, max=0.7), S(F(), min=0.1), S(F(2, 3), max=0.2),
                S(F(0, 2), min=-1.0, max=1.0),
                S(X([0.0, -0.0, float("nan"), 1.0]), min=-0.0, max=0.5, fd=False)))


# --- comparison and logic (bool results, not differentiable) ----------------------------
def _bool_unary(metas):
    return Meta(metas[0].shape, "bool")


_compare = partial(define, batch=_batch.elementwise, nin=2, infer=infer_compare, promote=True,
                   samples=(S(F(3, 4), F(4)), S(F(2, 3), C(0.5)), S(F(0, 2), F(2))))
_compare("eq", ufunc="equal")
_compare("ne", ufunc="not_equal")
_compare("lt", ufunc="less")
_compare("le", ufunc="less_equal")
_compare("gt", ufunc="greater")
_compare("ge", ufunc="greater_equal")
# PyTorch's logical ops take no Python number
_logical = partial(_compare, samples=(S(F(3, 4), F(4)), S(B(2, 3), B(2, 3)), S(F(0, 2), F(2))))
_logical("logical_and", ufunc="logical_and")
_logical("logical_or", ufunc="logical_or")
_logical("logical_xor", ufunc="logical_xor")
_bool_of_one = partial(define, batch=_batch.elementwise, infer=_bool_unary,
                       samples=(S(F(3, 4)), S(F()), S(F(0, 2))))
_bool_of_one("logical_not", ufunc="logical_not")
_bool_of_one("isnan", ufunc="isnan")
_bool_of_one("isinf", ufunc="isinf")
_bool_of_one("isfinite", ufunc="isfinite")
