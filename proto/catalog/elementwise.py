"""Elementwise ops: arithmetic, math functions and comparisons, with broadcasting and
PyTorch's type promotion. Broadcasting in derivatives is undone by the engine (one
`unbroadcast`), never inside a rule."""

from __future__ import annotations

from ._registry import OpDef, register
from ._types import (
    DEFAULT_FLOAT,
    FLOATING,
    Meta,
    OpError,
    broadcast_shapes,
    promote_types,
    result_type,
)


def _broadcast(metas: list[Meta]) -> tuple[int, ...]:
    shape: tuple[int, ...] = ()
    for m in metas:
        shape = broadcast_shapes(shape, m.shape)
    return shape


def infer_binary(metas: list[Meta]) -> Meta:
    if all(m.weak for m in metas):  # arithmetic on Python scalars stays a full-precision scalar
        return Meta((), promote_types(metas[0].dtype, metas[1].dtype), weak=True)
    return Meta(_broadcast(metas), result_type(metas))


def infer_true_div(metas: list[Meta]) -> Meta:
    dtype = result_type(metas)
    return Meta(_broadcast(metas), dtype if dtype in FLOATING else DEFAULT_FLOAT)


def infer_compare(metas: list[Meta]) -> Meta:
    return Meta(_broadcast(metas), "bool")


def infer_same(metas: list[Meta]) -> Meta:
    return Meta(metas[0].shape, metas[0].dtype)


def infer_float_unary(metas: list[Meta]) -> Meta:
    """exp, log, ...: integer inputs give the default float dtype, as in PyTorch."""
    m = metas[0]
    return Meta(m.shape, m.dtype if m.dtype in FLOATING else DEFAULT_FLOAT)


def _no_bool(name):
    def infer(metas: list[Meta]) -> Meta:
        out = infer_binary(metas)
        if out.dtype == "bool":
            raise OpError(
                "Subtraction, the `-` operator, with two bool tensors is not supported. "
                "Use the `^` or `logical_xor()` operator instead." if name == "sub"
                else f"{name}: not supported for bool tensors"
            )
        return out
    return infer


def binary(name, fwd, vjp, torch_name, infer=infer_binary):
    return register(OpDef(name, 2, lambda metas: infer(metas), fwd, vjp,
                          torch_name=torch_name, promote=True))


def unary(name, fwd, rule, torch_name, infer=infer_float_unary):
    return register(OpDef(name, 1, lambda metas: infer(metas), fwd,
                          None if rule is None else (rule,), torch_name=torch_name,
                          promote=infer is infer_float_unary))


def compare(name, ufunc):
    return register(OpDef(name, 2, lambda metas: infer_compare(metas),
                          lambda xp, a, b: getattr(xp, ufunc)(a, b), None, promote=True))


# --- arithmetic -------------------------------------------------------------------------
binary("add", lambda xp, a, b: a + b,
       (lambda g, x, y, out: g, lambda g, x, y, out: g), "AddBackward0")
binary("sub", lambda xp, a, b: a - b,
       (lambda g, x, y, out: g, lambda g, x, y, out: -g), "SubBackward0", _no_bool("sub"))
binary("mul", lambda xp, a, b: a * b,
       (lambda g, x, y, out: g * y, lambda g, x, y, out: g * x), "MulBackward0")
binary("div", lambda xp, a, b: xp.true_divide(a, b),
       (lambda g, x, y, out: g / y, lambda g, x, y, out: -g * out / y),
       "DivBackward0", infer_true_div)
binary("pow", lambda xp, a, b: xp.power(a, b),
       (lambda g, x, y, out: g * y * x ** (y - 1),
        lambda g, x, y, out: g * out * x.log()),
       "PowBackward0")
unary("neg", lambda xp, a: -a, lambda g, x, out: -g, "NegBackward0", infer_same)

# --- math -------------------------------------------------------------------------------
unary("exp", lambda xp, a: xp.exp(a), lambda g, x, out: g * out, "ExpBackward0")
unary("log", lambda xp, a: xp.log(a), lambda g, x, out: g / x, "LogBackward0")
unary("sqrt", lambda xp, a: xp.sqrt(a), lambda g, x, out: g / (out * 2), "SqrtBackward0")

# --- comparison (bool results, not differentiable) --------------------------------------
compare("eq", "equal")
compare("ne", "not_equal")
compare("lt", "less")
compare("le", "less_equal")
compare("gt", "greater")
compare("ge", "greater_equal")
