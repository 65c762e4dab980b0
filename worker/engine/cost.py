"""What a graph costs to run, in floating-point operations, estimated from shapes alone.

The gateway and the worker refuse a graph whose cost is over --max-flops before anything
runs (RESOURCE_EXHAUSTED), as they refuse one whose memory is over the limit: a few
kilobytes of request can otherwise ask for hours of work (an einsum over six vectors of
40 is 40^6 multiply-adds done naively). The figures are of the graph as the worker runs
it (gradients lowered, composites expanded), one multiply-add counted as two operations,
elementwise ops and reductions as one per element they read or write.
"""

from __future__ import annotations

import numpy as np

from remotegrad.proto.catalog import linalg
from remotegrad.proto.catalog.conv import _pool_geometry

from .graph import Graph


def graph_flops(g: Graph, targets: list[int]) -> int:
    """The operations every node the targets need costs, summed."""
    return sum(node_flops(g, n) for n in g.needed(targets))


def node_flops(g: Graph, n: int) -> int:
    op, metas = g.ops[n], [g.metas[i] for i in g.inputs[n]]
    rule = _RULES.get(op)
    if rule is not None:
        return int(rule(metas, g.metas[n], g.attrs[n]))
    return max([g.metas[n].numel] + [m.numel for m in metas])


def einsum_path(equation: str, shapes: list[tuple[int, ...]]) -> tuple[list, int]:
    """numpy's greedy contraction order for `equation` over operands of `shapes` (no
    array is made: zero-strided views stand in), and its cost in operations."""
    subs, rhs = linalg.parse_einsum(equation, [len(s) for s in shapes])
    sizes: dict[str, int] = {}
    for sub, shape in zip(subs, shapes):
        for c, k in zip(sub, shape):
            sizes[c] = max(sizes.get(c, k), k) if 0 not in (k, sizes.get(c, k)) else 0
    eq = ",".join(subs) + "->" + rhs
    views = [np.broadcast_to(np.zeros((), np.float32), s) for s in shapes]
    try:
        path = np.einsum_path(eq, *views, optimize="greedy")[0]
    except ValueError:  # a shape numpy's planner does not take (size-1 broadcasting)
        path = ["einsum_path", tuple(range(len(shapes)))]
    return path, _path_cost(path[1:], list(subs), rhs, sizes)


def _path_cost(steps, subs: list[str], rhs: str, sizes: dict[str, int]) -> int:
    total = 0
    for step in steps:
        picked = [subs[i] for i in step]
        subs = [s for i, s in enumerate(subs) if i not in step]
        letters = set("".join(picked))
        kept = letters & set("".join(subs) + rhs)
        work = 1
        for c in letters:
            work *= sizes[c]
        total += work * max(2, len(picked))  # a multiply per operand past the first, an add
        subs.append("".join(sorted(kept)))
    return total


def _einsum(metas, out, attrs) -> int:
    return max(einsum_path(attrs["equation"], [m.shape for m in metas])[1], out.numel)


def _matmul(metas, out, attrs) -> int:
    a = metas[0]
    inner = a.shape[-1] if a.shape else 1
    return 2 * out.numel * inner + out.numel


def _conv(metas, out, attrs) -> int:
    wshape = metas[1].shape  # (O, C/groups, kh, kw)
    per_out = 1
    for k in wshape[1:]:
        per_out *= k
    return 2 * out.numel * per_out


def _conv_input_grad(metas, out, attrs) -> int:
    return _conv([metas[0], metas[1]], metas[0], attrs)  # as many as the forward's


def _conv_weight_grad(metas, out, attrs) -> int:
    per_out = 1
    for k in attrs["weight_shape"][1:]:
        per_out *= k
    return 2 * metas[1].numel * per_out


def _pool(metas, out, attrs) -> int:
    x = metas[-1]
    shape = x.shape if len(x.shape) == 4 else (1, *x.shape)
    k, _s, _d, ho, wo, _p = _pool_geometry(shape, **attrs)
    return shape[0] * shape[1] * ho * wo * k[0] * k[1] + x.numel


_RULES = {"einsum": _einsum, "matmul": _matmul, "mm": _matmul, "bmm": _matmul,
          "linear": _matmul, "dot": _matmul, "conv2d": _conv,
          "conv2d_input_grad": _conv_input_grad, "conv2d_weight_grad": _conv_weight_grad,
          "max_pool2d": _pool, "max_pool2d_backward": _pool, "max_pool2d_select": _pool}
