"""The OpDef record and the catalog that holds one per op.

An op is declared once, next to its derivative: name, arity, attributes with their types
and defaults, a shape/dtype rule (`infer`), the forward on an array module `xp` (numpy or
cupy), and one derivative rule per input. A derivative rule is written with the catalog's
own ops over symbolic handles (see remotegrad.worker.engine.graph.Sym), so gradients are
graphs and can be differentiated again.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._types import Meta, OpError

REQUIRED = object()
# Attribute kinds and the Python values they accept.
ATTR_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "str": (str,),
    "ints": (tuple,),
    "floats": (tuple,),
    "scalar": (bool, int, float),
    "dims": (int, tuple, type(None)),  # None, one dim or several
    "optional_int": (int, type(None)),
    "optional_float": (float, int, type(None)),
    "optional_scalar": (bool, int, float, type(None)),
    "optional_str": (str, type(None)),
    "optional_dims": (int, tuple, type(None)),
    "int_or_ints": (int, tuple),
    "optional_ints": (int, tuple, type(None)),
    "padding": (int, tuple, str),  # conv2d: an int, a pair, "valid" or "same"
}


_INT_KINDS = frozenset({"int", "optional_int", "int_or_ints", "optional_ints", "dims",
                        "optional_dims", "ints", "padding"})


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _valid(kind: str, value) -> bool:
    """The value has the kind's type, and a tuple holds only ints (or numbers for floats):
    the wire can carry anything, and shape rules must not meet a surprise."""
    if not isinstance(value, ATTR_KINDS[kind]):
        return False
    if isinstance(value, tuple):
        if kind == "floats":
            return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        return all(_is_int(v) for v in value)
    if kind in _INT_KINDS and isinstance(value, bool):
        return False
    return True


@dataclass(frozen=True)
class In:
    """One sample input: shape, kind and value domain. Kinds: "float" (uniform in
    [low, high)), "int" (int64 in [low, high)), "bool", "mask" (bool, value fixed by the
    sample's seed), "value" (the exact nested list in `value`), "fixed" (a float input of
    the dtype under test with the exact values in `value`)."""

    shape: tuple[int, ...]
    kind: str = "float"
    low: float = -2.0
    high: float = 2.0
    value: Any = None


@dataclass(frozen=True)
class Sample:
    """OpInfo-style sample: inputs and attrs. `grad` lists the inputs differentiated in
    the tests (default: every float input); `fd` False skips finite differences (kinks)."""

    inputs: tuple[In, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    grad: tuple[int, ...] | None = None
    fd: bool = True
    second: bool = True

Rule = Callable[..., Any]


@dataclass(frozen=True)
class OpDef:
    name: str
    nin: int                                   # number of inputs; -1 for variadic
    infer: Callable[..., Meta]                 # infer(metas, **attrs) -> Meta
    forward: Callable[..., Any] | None         # forward(xp, *arrays, **attrs) -> array
    vjp: tuple[Rule | None, ...] | None = None # one rule per input; None: not differentiable
    attrs: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (kind, default)
    variadic_rule: Rule | None = None          # rule(g, *inputs, out, index, **attrs)
    promote: bool | tuple[int, ...] = False    # cast inputs (all, or these) to result_type
    decompose: Rule | None = None              # same value from catalog ops; its vjp is ours
    float_inputs: bool = False                 # integer inputs are cast to the default float
    ufunc: str | None = None                   # forward is xp.<ufunc>(*inputs) at default attrs
    # The forward written with xp ufuncs (where too) and arithmetic operators only: no
    # out=, casts, indexing or reductions. Fusion compiles runs of these into one kernel
    # (worker/engine/fusion.py); ops with `ufunc` need none.
    fusable: Callable[..., Any] | None = None
    samples: tuple[Sample, ...] = ()           # OpInfo-style inputs walked by the tests
    # The forward's result never shares memory with an input (besides ufunc calls, which
    # never do): the executor may write a later ufunc's result into it (engine/executor).
    fresh: bool = False
    # How the op maps over a leading batch dimension (see _batching: a rule of a Site, or
    # NoRule(why)); vmap and same-structure batching read it. None: not declared yet.
    batch: Callable[..., Any] | None = None

    @property
    def differentiable(self) -> bool:
        return (self.vjp is not None or self.variadic_rule is not None
                or self.decompose is not None)

    def rule(self, index: int) -> Rule | None:
        if self.variadic_rule is not None:
            return self.variadic_rule
        return self.vjp[index] if self.vjp else None

    def check_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and check types; returns the complete attribute dict."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise OpError(f"{self.name}: unknown attribute(s) {sorted(unknown)}")
        out = {}
        for name, (kind, default) in self.attrs.items():
            if name not in attrs:
                if default is REQUIRED:
                    raise OpError(f"{self.name}: missing attribute '{name}'")
                out[name] = default
                continue
            value = attrs[name]
            if not _valid(kind, value):
                raise OpError(
                    f"{self.name}: attribute '{name}' must be {kind}, got {value!r}"
                )
            out[name] = value
        return out

    def check(self, metas: list[Meta], attrs: dict[str, Any]) -> tuple[Meta, dict[str, Any]]:
        """Validate arity and attributes, then run the shape/dtype rule."""
        if self.nin >= 0 and len(metas) != self.nin:
            raise OpError(f"{self.name}: expected {self.nin} input(s), got {len(metas)}")
        full = self.check_attrs(attrs)
        return self.infer(metas, **full), full


CATALOG: dict[str, OpDef] = {}

# Whether the reverse sweep being written records a graph (the grad node's create_graph,
# PyTorch's GradMode inside its backward): the engine's lowering sets it, a rule that
# branches on it as PyTorch's does (prod's) reads it.
GRAD_MODE: contextvars.ContextVar[bool] = contextvars.ContextVar("grad_mode", default=False)

# The salt of a `sign` node that is PyTorch's sgn in a rule (abs's g * sgn(x), norm's for
# p = 1 and inf): sgn's derivative of a real x is an efficient zero tensor, which the
# engine's sweep accumulates and passes on as PyTorch does (worker/engine/autodiff.py);
# sign's own is zeros_like(g), a tensor of zeros. Salts of the client's nodes are >= 0.
SGN_SALT = -1


def sgn(x):
    """sign(x) as PyTorch's sgn, for a derivative rule (x: a Sym)."""
    return type(x)(x.g, x.g.add("sign", (x.id,), salt=SGN_SALT))


def _ufunc_forward(ufunc: str) -> Callable[..., Any]:
    def forward(xp, *arrays):
        return getattr(xp, ufunc)(*arrays)
    forward.__name__ = ufunc
    return forward


def define(name: str, *, infer: Callable[..., Meta], nin: int = 1,
           forward: Callable[..., Any] | None = None, ufunc: str | None = None,
           vjp: Rule | tuple[Rule | None, ...] | None = None,
           variadic_rule: Rule | None = None, decompose: Rule | None = None,
           attrs: dict[str, tuple[str, Any]] | None = None,
           promote: bool | tuple[int, ...] = False, float_inputs: bool = False,
           fusable: Callable[..., Any] | bool | None = None, fresh: bool = False,
           batch: Callable[..., Any] | None = None,
           samples: tuple[Sample, ...] = ()) -> OpDef:
    """Declare and register one op: the only way ops enter the catalog (keyword-only, so
    every fact is named). `ufunc` alone gives the forward (xp.<ufunc>(*inputs)); an op
    with attributes that names a ufunc (used at default attributes) writes its forward.
    `vjp` is one rule per input, or one rule for a one-input op. `fusable=True`: the
    forward itself is fusable (see OpDef.fusable). `batch`: the batching rule
    (_batching: a dict of attributes, a rewrite or None per Site; NoRule(why) for none)."""
    if forward is None and ufunc is not None:
        if attrs:
            raise ValueError(f"{name}: an op with attributes writes its forward")
        forward = _ufunc_forward(ufunc)
    if callable(vjp):
        if nin != 1:
            raise ValueError(f"{name}: a single rule is for a one-input op; give one per input")
        vjp = (vjp,)
    if fusable is True:
        fusable = forward
    return _register(OpDef(
        name, nin, infer, forward, vjp, attrs=dict(attrs or {}),
        variadic_rule=variadic_rule, promote=promote, decompose=decompose,
        float_inputs=float_inputs, ufunc=ufunc, fusable=fusable or None,
        samples=tuple(samples), fresh=fresh, batch=batch))


def _register(op: OpDef) -> OpDef:
    if op.name in CATALOG:
        raise ValueError(f"op {op.name!r} registered twice")
    CATALOG[op.name] = op
    return op


def get(name: str) -> OpDef:
    try:
        return CATALOG[name]
    except KeyError:
        raise OpError(f"unknown op {name!r}") from None
