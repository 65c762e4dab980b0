"""Batching rules: how an op maps over a leading batch dimension (OpDef.batch).

A rule is a function of one `Site` (the op's complete attributes, its inputs' metas as
ONE slice sees them, which inputs carry the batch dimension, and the slice's result meta)
and answers one of:

- a dict: the same op with these attributes, over the inputs as they are (a batched
  input with its batch dimension first, an unbatched one as it is), gives the batched
  result with its batch dimension first;
- a rewrite `f(emit, xs, size) -> handle`: a small graph of catalog ops giving it, where
  `emit(op, *operands, **attrs)` records one op (an operand is a handle or a Python
  number: a weakly typed const, as clients record them), `xs` are the inputs (batched
  ones with the batch dimension first) and `size` the batch size;
- None: no rule for this case; the caller maps the op one slice at a time.

`NoRule(why)` stands for an op with no rule at all (it answers None); `SOURCE` for an op
without inputs, which never meets a batched one. Nothing here knows who batches: the
client's vmap and a gateway stacking same-structure graphs read the same rules. The
caller checks that what a rule gave has the batched meta (batch size + the slice's
shape, the slice's dtype) and maps per slice otherwise, so a rule may stay simple.

Here: the kinds of rule many ops share (elementwise, reductions, dims that shift, shape
ops, matmul); _batching_nn: the rules of single ops (losses, linear, layer_norm,
embedding, convolutions).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._types import Meta, broadcast_shapes

__all__ = ["SOURCE", "NoRule", "Site", "all_batched", "as_batched", "dims_shift", "elementwise",
           "expand_batch", "fold", "folded", "keep_attrs", "matmul", "reduction",
           "with_reduction"]


@dataclass(frozen=True)
class Site:
    op: str
    attrs: dict[str, Any]
    metas: tuple[Meta, ...]
    batched: tuple[bool, ...]
    out: Meta

    def rank(self, i: int = 0) -> int:
        return len(self.metas[i].shape)


class NoRule:
    """No batching rule; `why` says what a rule would have to do (the coverage test
    lists it)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __call__(self, site: Site) -> None:
        return None

    def __repr__(self) -> str:
        return f"NoRule({self.why!r})"


SOURCE = NoRule("a source: no inputs, so never a batched one")

Emit = Callable[..., Any]


def keep_attrs(site: Site) -> dict:
    """Batch-polymorphic as it is: the same attributes."""
    return site.attrs


def expand_batch(emit: Emit, x: Any, meta: Meta, size: int) -> Any:
    """An unbatched input as a batched one (every slice the same)."""
    return emit("expand", emit("unsqueeze", x, dim=0), shape=(size,) + tuple(meta.shape))


def as_batched(emit: Emit, x: Any, meta: Meta, batched: bool, size: int) -> Any:
    """An input with the batch dim first: as it is if batched, else expanded."""
    return x if batched else expand_batch(emit, x, meta, size)


def _emit_plan(emit: Emit, op: str, plan: Any, xs: list, size: int) -> Any:
    """What a rule's answer records: its rewrite, or the op with its attributes."""
    return plan(emit, xs, size) if callable(plan) else emit(op, *xs, **plan)


def _up(emit: Emit, x: Any, n: int) -> Any:
    """n size-1 dims after the batch dim: a batched input aligned to a higher rank."""
    for _ in range(n):
        x = emit("unsqueeze", x, dim=1)
    return x


def _aligned(emit: Emit, site: Site, xs: list, rank: int) -> list:
    return [_up(emit, x, rank - len(m.shape)) if b and m is not None else x
            for x, m, b in zip(xs, site.metas, site.batched)]


def elementwise(site: Site):
    """Broadcasting ops: a batched input of a lower rank than the result gets size-1 dims
    after its batch dim, so that broadcasting lines the slices' dims up as one slice's."""
    r = len(site.out.shape)
    if all(len(m.shape) == r for m, b in zip(site.metas, site.batched) if b):
        return site.attrs

    def rewrite(emit, xs, size):
        return emit(site.op, *_aligned(emit, site, list(xs), r), **site.attrs)
    return rewrite


def all_batched(then: Callable[[Site], Any] = keep_attrs, which: tuple[int, ...] | None = None):
    """Ops whose inputs must agree in shape (gather, cat, grad): unbatched inputs (of
    `which`, default all) are expanded to the batch first; `then` gives the attributes
    for them batched."""
    def rule(site: Site):
        grow = tuple(not b and (which is None or i in which)
                     for i, b in enumerate(site.batched))
        now = tuple(b or g for b, g in zip(site.batched, grow))
        plan = then(Site(site.op, site.attrs, site.metas, now, site.out))
        if plan is None or not any(grow):
            return plan

        def rewrite(emit, xs, size):
            full = [as_batched(emit, x, m, not g, size)
                    for x, m, g in zip(xs, site.metas, grow)]
            return _emit_plan(emit, site.op, plan, full, size)
        return rewrite
    return rule


def only(*batchable: int, then: Callable[[Site], Any] = keep_attrs):
    """A rule for when only these inputs carry the batch dim; else per slice."""
    def rule(site: Site):
        if any(b for i, b in enumerate(site.batched) if i not in batchable):
            return None
        return then(site)
    return rule


def _shift(d: int, rank: int) -> int:
    return d % rank + 1


def dims_shift(*names: str, extra: int = 0):
    """Attributes naming dims of input 0 (ints or tuples of ints) move past the batch dim;
    `extra` 1 where a dim may also name the position after the last (unsqueeze, stack).
    A 0-d slice, whose dims 0 and -1 name nothing, maps per slice."""
    def rule(site: Site):
        r = site.rank() + extra
        if r == 0:
            return None
        attrs = dict(site.attrs)
        for name in names:
            d = attrs[name]
            if d is None:
                return None
            attrs[name] = (tuple(_shift(i, r) for i in d) if isinstance(d, tuple)
                           else _shift(d, r))
        return attrs
    return rule


# Reductions whose value over a 0-d tensor is that tensor (in the result's dtype).
_SAME_AT_0D = frozenset({"sum", "mean", "prod", "amax", "amin", "max", "min", "logsumexp",
                         "all", "any"})


def reduction(site: Site):
    """sum(dim, keepdim) and its kin: dims shift; dim=None is every dim of the slice."""
    r = site.rank()
    d = site.attrs.get("dim")
    if r == 0 and site.op in _SAME_AT_0D:  # a 0-d slice reduces to itself
        dtype = site.out.dtype
        return lambda emit, xs, size: emit("cast", xs[0], dtype=dtype)
    if r == 0 or d == ():
        return None
    if d is None:
        if site.op in ("max", "min"):  # full max(): amax over every dim, same gradient
            keep = site.attrs["keepdim"] and len(site.out.shape) == r  # max() has none
            attrs = dict(site.attrs, dim=tuple(range(1, r + 1)), keepdim=keep)
            return lambda emit, xs, size: emit("a" + site.op, xs[0], **attrs)
        if site.op in ("argmax", "argmin", "prod"):  # a flat index / one dim only
            return _flat(site)
        return dict(site.attrs, dim=tuple(range(1, r + 1)))
    return dims_shift("dim")(site)


def _flat(site: Site):
    n = 1
    for s in site.metas[0].shape:
        n *= s

    def rewrite(emit, xs, size):
        flat = emit("reshape", xs[0], shape=(size, n))
        out = emit(site.op, flat, **dict(site.attrs, dim=1, keepdim=False))
        return emit("reshape", out, shape=(size,) + tuple(site.out.shape))
    return rewrite


def reshaped(site: Site):
    """An op whose result is its input laid out anew (reshape, squeeze(None), flatten of
    a 0-d slice): a reshape to the batch and the slice's result shape."""
    shape = tuple(site.out.shape)
    return lambda emit, xs, size: emit("reshape", xs[0], shape=(size,) + shape)


def to_shape(attr: str):
    """expand(shape) / broadcast_to(size): align ranks, then the batch + the slice's
    result shape (its -1s resolved)."""
    def rule(site: Site):
        n = len(site.attrs[attr])

        def rewrite(emit, xs, size):
            x = _up(emit, xs[0], n - site.rank())
            return emit(site.op, x, **dict(site.attrs, **{attr: (size,) + tuple(site.out.shape)}))
        return rewrite
    return rule


def fold(full_rank: int, data: tuple[int, ...] = (0,)):
    """Ops over (N, C, ...) inputs that also take (C, ...) (conv2d, pooling): a batched
    (C, ...) slice is a batch of N as it is; a batched (N, C, ...) one folds the batch into
    N and unfolds the result. `data` are the inputs that carry N; the others must be
    unbatched."""
    def rule(site: Site):
        if any(b for i, b in enumerate(site.batched) if i not in data):
            return None
        ranks = {site.rank(i) for i in data}
        if len(ranks) != 1:
            return None
        r = ranks.pop()
        if r == full_rank - 1:
            return all_batched()(site) if len(data) > 1 else site.attrs
        if r != full_rank:
            return None
        return folded(site, data)
    return rule


def folded(site: Site, data: tuple[int, ...]):
    """The rewrite that folds the batch into dim 0 of inputs `data` (unbatched ones
    expanded first), runs the op once and takes the batch back out of its result."""
    def rewrite(emit, xs, size):
        xs = list(xs)
        for i in data:
            m = site.metas[i]
            x = as_batched(emit, xs[i], m, site.batched[i], size)
            xs[i] = emit("reshape", x, shape=(size * m.shape[0],) + tuple(m.shape[1:]))
        out = emit(site.op, *xs, **site.attrs)
        return emit("reshape", out, shape=(size,) + tuple(site.out.shape))
    return rewrite


def matmul(site: Site):
    """matmul, mm, bmm, dot as one matmul: 1-d operands become matrices (a row for the
    left, a column for the right) and the added dims are squeezed off after; batched
    operands are aligned so the batch dim leads the broadcast batch dims."""
    (a, b), (ba, bb) = site.metas, site.batched
    a1, b1 = len(a.shape) == 1, len(b.shape) == 1

    def rewrite(emit, xs, size):
        x, y = xs
        ra, rb = len(a.shape), len(b.shape)
        if a1:
            x, ra = emit("unsqueeze", x, dim=1 if ba else 0), 2
        if b1:
            y, rb = emit("unsqueeze", y, dim=-1), 2
        r = max(ra, rb)
        x = _up(emit, x, r - ra) if ba else x
        y = _up(emit, y, r - rb) if bb else y
        out = emit("matmul", x, y)
        if b1:
            out = emit("squeeze", out, dim=-1)
        if a1:
            out = emit("squeeze", out, dim=-1 if b1 else -2)
        return out
    return rewrite


def outer(site: Site):
    def rewrite(emit, xs, size):
        return emit("mul", emit("unsqueeze", xs[0], dim=-1), emit("unsqueeze", xs[1], dim=-2))
    return rewrite


def einsum(site: Site):
    """A subscript of its own for the batch, on the batched operands and the result."""
    eq = site.attrs["equation"].replace(" ", "")
    if "->" not in eq:  # implicit: the ellipsis' dims, then the letters seen once, sorted
        once = sorted(c for c in set(eq) if c.isalpha() and eq.count(c) == 1)
        eq += "->" + ("..." if "..." in eq else "") + "".join(once)
    free = [c for c in string.ascii_letters if c not in eq]
    if not free:
        return None
    lhs, rhs = eq.split("->")
    terms = lhs.split(",")
    if len(terms) != len(site.batched):
        return None
    z = free[0]
    terms = [z + t if b else t for t, b in zip(terms, site.batched)]
    return dict(site.attrs, equation=",".join(terms) + "->" + z + rhs)


def with_reduction(site: Site, pointwise: Callable[[Site], Any] = elementwise):
    """A loss with `reduction`: 'none' maps as `pointwise`; 'mean'/'sum' is the 'none'
    loss reduced over each slice's dims."""
    red = site.attrs["reduction"]
    none = Site(site.op, dict(site.attrs, reduction="none"), site.metas, site.batched,
                Meta(_broadcast(site.metas), site.out.dtype))
    plan = pointwise(none)
    if red == "none" or plan is None:
        return plan
    r = len(none.out.shape)

    def rewrite(emit, xs, size):
        out = _emit_plan(emit, site.op, plan, xs, size)
        if r == 0:
            return out
        return emit(red, out, dim=tuple(range(1, r + 1)))
    return rewrite


def _broadcast(metas) -> tuple[int, ...]:
    shape: tuple[int, ...] = ()
    for m in metas:
        shape = broadcast_shapes(shape, m.shape)
    return shape


def index_key(prefix_shape: bool = False):
    """index / index_backward over a batched tensor (not batched indices): a full slice
    before the key. Tensor items that are not next to each other send their result dims
    first in PyTorch, in front of the batch dim: those map per slice."""
    def rule(site: Site):
        if any(site.batched[1:]):
            return None if prefix_shape else _batched_indices(site)
        items = site.attrs["key"].split(",") if site.attrs["key"] else []
        where = [i for i, t in enumerate(items) if t.strip() == "T"]
        if where and where[-1] - where[0] != len(where) - 1:
            return None
        attrs = dict(site.attrs, key=",".join([":"] + items))
        if not prefix_shape:
            return attrs
        return lambda emit, xs, size: emit(
            site.op, *xs, **dict(attrs, shape=(size,) + tuple(site.attrs["shape"])))
    return rule


def _batched_indices(site: Site):
    """x[idx] with batched integer indices leading the key (then only full slices): with x
    unbatched, the batch leads the indices and so the result, as it is; with x batched too,
    a batch index (0..size-1, shaped to broadcast with idx) picks each slice's own rows."""
    items = [t.strip() for t in site.attrs["key"].split(",")]
    full = [t == "..." or (t and set(t) == {":"}) for t in items[1:]]  # ":", "::", "..."
    if len(site.metas) != 2 or items[0] != "T" or not all(full):
        return None
    if site.metas[1].dtype == "bool":  # a batched mask: each slice's count its own
        return None
    if not site.batched[0]:
        return site.attrs
    k = len(site.metas[1].shape)
    attrs = dict(site.attrs, key=",".join(["T"] + items))

    def rewrite(emit, xs, size):
        rows = emit("reshape", emit("arange", end=size), shape=(size,) + (1,) * k)
        return emit(site.op, xs[0], rows, xs[1], **attrs)
    return rewrite


def sum_to(site: Site):
    """sum_to(shape) of a batched slice: to the batch, size-1 dims for the slice's leading
    ones, and the shape; then those dims dropped."""
    shape = tuple(site.attrs["shape"])
    k = site.rank() - len(shape)

    def rewrite(emit, xs, size):
        out = emit("sum_to", xs[0], shape=(size,) + (1,) * k + shape)
        return emit("reshape", out, shape=(size,) + shape)
    return rewrite


def pad(site: Site):
    """Constant padding touches the last dims only; the other modes accept a fixed rank,
    which the batch dim may exceed (per slice then)."""
    n = len(site.attrs["pad"]) // 2
    if site.attrs["mode"] != "constant" and site.rank() != n + 1:
        return None
    if "shape" not in site.attrs:
        return site.attrs
    return lambda emit, xs, size: emit(
        site.op, xs[0], **dict(site.attrs, shape=(size,) + tuple(site.attrs["shape"])))


def repeat(site: Site):
    reps = tuple(site.attrs["repeats"])

    def rewrite(emit, xs, size):
        return emit("repeat", _up(emit, xs[0], len(reps) - site.rank()), repeats=(1,) + reps)
    return rewrite


def squeeze(site: Site):
    if site.attrs["dim"] is None:
        return reshaped(site)
    return dims_shift("dim")(site)


def flatten(site: Site):
    if site.rank() == 0:
        return reshaped(site)
    return dims_shift("start_dim", "end_dim")(site)


def same_rank(then: Callable[[Site], Any]):
    """cat: every input of one rank (PyTorch's legacy skipping of 1-d empty inputs maps
    per slice)."""
    def rule(site: Site):
        if len({len(m.shape) for m in site.metas}) != 1:
            return None
        return then(site)
    return rule
