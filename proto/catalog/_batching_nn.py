"""Batching rules of single ops (see _batching for what a rule is): losses over class
rows, linear, layer_norm, embedding and the convolutions, whose batched forms fold the
batch into rows, N or groups."""

from __future__ import annotations

from ._batching import Site, _up, as_batched, expand_batch, fold, folded
from ._types import Meta

__all__ = ["class_loss", "conv2d", "conv2d_input_grad", "conv2d_weight_grad", "embedding",
           "layer_norm", "linear", "rows"]


def class_loss(site: Site):
    """nll_loss / cross_entropy over (C,), (N, C) or (N, C, d1, ...) slices, class-index
    targets (or class probabilities of x's shape), an unbatched weight or none: the rows of
    every slice (C last) as one (size * rows, C) call with reduction 'none', then each
    slice's sum, or mean as PyTorch's:
    over its targets that are not ignored (their weights' sum, with a weight), over N for
    probabilities."""
    if len(site.metas) == 3 and site.batched[2] or len(site.metas) > 3:
        return None
    x, t = site.metas[:2]
    weighted = len(site.metas) == 3
    probs = t.dtype.startswith("float")  # class probabilities, of x's shape
    if not x.shape or (t.shape != x.shape if probs else len(t.shape) != len(x.shape) - 1):
        return None
    r = len(x.shape)
    c = x.shape[1] if r > 1 else x.shape[0]
    n = 1  # rows per slice: N and the K extra dims of (N, C, d1, ...)
    for i, s in enumerate(x.shape):
        n *= s if r > 1 and i != 1 else 1
    last = (0, 1) + tuple(range(3, r + 1)) + (2,)  # batched (B, N, C, d...): C last
    red = site.attrs["reduction"]
    ignore = site.attrs["ignore_index"]

    def rewrite(emit, xs, size):
        xb = as_batched(emit, xs[0], x, site.batched[0], size)
        tb = as_batched(emit, xs[1], t, site.batched[1], size)
        if r > 2:
            xb = emit("permute", xb, dims=last)
            tb = emit("permute", tb, dims=last) if probs else tb
        rows = emit(site.op, emit("reshape", xb, shape=(size * n, c)),
                    emit("reshape", tb, shape=(size * n,) + ((c,) if probs else ())),
                    *xs[2:], **dict(site.attrs, reduction="none"))
        per = emit("reshape", rows, shape=(size, n))
        if red == "none":
            return emit("reshape", per, shape=(size,) + tuple(site.out.shape))
        total = emit("sum", per, dim=1)
        if red == "sum":
            return total
        if probs:
            return emit("div", total, n)
        flat = emit("reshape", tb, shape=(size * n,))
        kept = emit("cast", emit("ne", flat, ignore), dtype=site.out.dtype)
        if weighted:  # each kept target's weight (an ignored one indexes class 0, times 0)
            safe = emit("where", emit("ne", flat, ignore), flat, 0)
            kept = emit("mul", kept, emit("index_select", xs[2], safe, dim=0))
        count = emit("sum", emit("reshape", kept, shape=(size, n)), dim=1)
        return emit("div", total, count)
    return rewrite


def linear(site: Site):
    """linear(x, w, b): batch-polymorphic in x; a batched weight or bias (per-sample
    parameters) is x @ wᵀ as a matmul per slice, plus the bias aligned."""
    if not any(site.batched[1:]):
        return site.attrs
    x, w = site.metas[0], site.metas[1]
    lead = tuple(x.shape[:-1])
    rows = 1
    for s in lead:
        rows *= s

    def rewrite(emit, xs, size):
        xb, wb = xs[0], xs[1]
        x2 = emit("reshape", xb, shape=((size,) if site.batched[0] else ()) + (rows, x.shape[-1]))
        wt = emit("transpose", wb, dim0=-1, dim1=-2)
        if not site.batched[1]:
            wt = expand_batch(emit, wt, Meta((w.shape[1], w.shape[0]), w.dtype), size)
        out = emit("reshape", emit("matmul", x2, wt), shape=(size,) + lead + (w.shape[0],))
        if len(xs) == 3:
            bias = _up(emit, xs[2], len(lead)) if site.batched[2] else xs[2]
            out = emit("add", out, bias)
        return out
    return rewrite


def layer_norm(site: Site):
    """Batch-polymorphic in x; a batched weight or bias: normalise, then scale and shift
    as elementwise ops aligned to the slice's rank."""
    if not any(site.batched[1:]):
        return site.attrs
    r = site.rank()

    def rewrite(emit, xs, size):
        out = emit("layer_norm", xs[0], **site.attrs)
        for op, x, m, b in zip(("mul", "add"), xs[1:], site.metas[1:], site.batched[1:]):
            out = emit(op, out, _up(emit, x, r - len(m.shape)) if b else x)
        return out
    return rewrite


def rows(site: Site):
    """Ops over rows (cross_entropy_rows and its gradient): every slice's rows as one call,
    (size * N, ...), unbatched inputs expanded first; then the batch taken back out."""
    return folded(site, tuple(range(len(site.metas))))


def conv2d(site: Site):
    """conv2d(x, w, b): an unbatched weight folds the batch into N (see fold). A batched
    weight (per-sample parameters) is one convolution with the batch as groups: the slices'
    channels side by side, (N, size*C, H, W) by (size*O, C/g, kh, kw) in size*g groups,
    then the batch taken back out of the output channels."""
    if not any(site.batched[1:]):
        return fold(4)(site)
    x, w = site.metas[0], site.metas[1]
    three = len(x.shape) == 3
    n = 1 if three else x.shape[0]
    c, o, groups = w.shape[1] * site.attrs["groups"], w.shape[0], site.attrs["groups"]
    hw = tuple(x.shape[-2:])
    out = tuple(site.out.shape)  # (N, O, H', W') or (O, H', W')

    def rewrite(emit, xs, size):
        xb = as_batched(emit, xs[0], x, site.batched[0], size)
        xb = emit("reshape", xb, shape=(size, n, c) + hw)
        xb = emit("reshape", emit("transpose", xb, dim0=0, dim1=1),
                  shape=(n, size * c) + hw)
        wb = as_batched(emit, xs[1], w, site.batched[1], size)
        wb = emit("reshape", wb, shape=(size * o,) + tuple(w.shape[1:]))
        args = [xb, wb]
        if len(xs) == 3:
            bb = as_batched(emit, xs[2], site.metas[2], site.batched[2], size)
            args.append(emit("reshape", bb, shape=(size * o,)))
        y = emit("conv2d", *args, **dict(site.attrs, groups=size * groups))
        y = emit("reshape", y, shape=(n, size, o) + out[-2:])
        y = emit("transpose", y, dim0=0, dim1=1)
        return emit("reshape", y, shape=(size,) + out)
    return rewrite


def conv2d_input_grad(site: Site):
    """The input gradient of a convolution by an unbatched weight: the batch folded into
    N (the input shape's too), as fold."""
    if site.batched[1]:
        return None
    shape = tuple(site.attrs["input_shape"])
    if len(shape) == 3:  # an unbatched convolution: the batch is its N
        return lambda emit, xs, size: emit(site.op, *xs, **dict(
            site.attrs, input_shape=(size,) + shape))
    g = site.metas[0]

    def rewrite(emit, xs, size):
        gb = emit("reshape", xs[0], shape=(size * g.shape[0],) + tuple(g.shape[1:]))
        out = emit(site.op, gb, xs[1], **dict(site.attrs,
                                               input_shape=(size * shape[0],) + shape[1:]))
        return emit("reshape", out, shape=(size,) + tuple(site.out.shape))
    return rewrite


def conv2d_weight_grad(site: Site):
    """Per-slice weight gradients (x and g batched): the groups form of conv2d's rule, one
    weight gradient of size * groups groups, then the batch taken back out."""
    x, g = site.metas
    if len(x.shape) != 4:
        return None
    n, o = x.shape[0], g.shape[1]
    ws, groups = tuple(site.attrs["weight_shape"]), site.attrs["groups"]

    def side(emit, t, m, b, size):
        t = as_batched(emit, t, m, b, size)
        t = emit("transpose", t, dim0=0, dim1=1)  # (N, size, channels, H, W)
        return emit("reshape", t, shape=(n, size * m.shape[1]) + tuple(m.shape[2:]))

    def rewrite(emit, xs, size):
        xb = side(emit, xs[0], x, site.batched[0], size)
        gb = side(emit, xs[1], g, site.batched[1], size)
        out = emit(site.op, xb, gb, **dict(site.attrs, weight_shape=(size * o,) + ws[1:],
                                            groups=size * groups))
        return emit("reshape", out, shape=(size,) + ws)
    return rewrite


def embedding(site: Site):
    """embedding(idx, weight): batch-polymorphic in the indices. A batched weight (per-sample
    parameters) is one table of every slice's rows, (size * V, D), each slice's indices
    offset to its own rows (not with a padding_idx: that names one row of one table)."""
    if not site.batched[1]:
        return site.attrs
    if site.attrs["padding_idx"] is not None:
        return None
    idx, w = site.metas
    v, k = w.shape[0], len(idx.shape)

    def rewrite(emit, xs, size):
        ib = as_batched(emit, xs[0], idx, site.batched[0], size)
        offset = emit("reshape", emit("mul", emit("arange", end=size, dtype=idx.dtype), v),
                      shape=(size,) + (1,) * k)
        table = emit("reshape", xs[1], shape=(size * v,) + tuple(w.shape[1:]))
        return emit("embedding", emit("add", ib, offset), table, **site.attrs)
    return rewrite
