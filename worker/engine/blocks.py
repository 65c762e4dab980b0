"""Long array calls computed in blocks, so that a cancelled call stops inside them.

A call is cancelled by an exception raised in its thread between two Python steps
(worker/compute.py: Cancellation); one numpy call is one step, however long it runs. An
op over BLOCK_FLOPS operations is therefore run as the same op over blocks of its operands,
written into one result array: the same values (each block does the same arithmetic on the
same elements), the result plus one block of extra memory, and a cancellation lands
between two blocks, a fraction of a second apart, instead of after the whole op.

- mm, matmul, bmm, linear: blocks of the first operand's rows.
- conv2d, conv2d_input_grad, conv2d_weight_grad: blocks of the batch (the input gradient's
  `input_shape` attribute names the batch, so its forward is bound again per block; the
  weight gradient is the sum of the blocks').
- max_pool2d and its two gradients: blocks of the batch, or of the channels when the batch
  is too small to cut (every (image, channel) plane is pooled alone).
- einsum: numpy's own greedy contraction path, pair by pair as np.einsum runs it, and a
  pair over the bound in blocks of one of its result's letters.

Only on numpy: CuPy queues kernels without waiting for them, so blocks would not stop the
device any sooner.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from remotegrad.proto import catalog

BLOCK_FLOPS = 1e9  # about 10-50 ms of BLAS on one core
# A pooling "operation" (cost.py: one per window element) is a copy and a compare, not a
# BLAS multiply-add: about 5 ns here, so its blocks are this many times smaller.
POOL_SLOWER = 50
ROW_BLOCKED = frozenset({"mm", "matmul", "bmm", "linear"})
BATCH_BLOCKED = frozenset({"conv2d", "conv2d_weight_grad", "conv2d_input_grad"})
PLANE_BLOCKED = frozenset({"max_pool2d", "max_pool2d_backward", "max_pool2d_select"})
BLOCKED = ROW_BLOCKED | BATCH_BLOCKED | PLANE_BLOCKED | {"einsum"}


def blocked(fn, xp: Any, op: str, flops: int, first_shape: tuple, out_shape: tuple,
            attrs: dict | None = None):
    """`fn` (the op's forward bound to `attrs`), run in blocks when it costs over
    BLOCK_FLOPS and its operands can be cut (a matrix times a vector keeps one call)."""
    if op in PLANE_BLOCKED:
        flops *= POOL_SLOWER
    if flops <= BLOCK_FLOPS or xp.__name__ != "numpy":
        return fn
    if op == "einsum" and attrs is not None:
        return _einsum_pairs(fn, attrs["equation"])
    if op == "conv2d_input_grad" and attrs is not None:
        return _input_grad_by_batch(fn, xp, flops, attrs)
    if op in BATCH_BLOCKED:
        return _by_batch(fn, xp, op, flops, first_shape)
    if op in PLANE_BLOCKED:
        return _by_plane(fn, xp, flops, first_shape)
    if op not in ROW_BLOCKED:
        return fn
    if len(first_shape) < 2 or len(out_shape) < 2 or first_shape[-2] < 2:
        return fn
    step = _step(first_shape[-2], flops)

    def run(a, *rest):
        return _assembled(xp, a.shape[-2], step, -2, lambda s: fn(a[..., s, :], *rest))
    return run


def _step(count: int, flops: float) -> int:
    """Elements of a dimension of `count` per block, for blocks of about BLOCK_FLOPS."""
    return max(1, int(count * BLOCK_FLOPS // max(flops, 1)))


def _at(axis: int, s: slice) -> tuple:
    """The index of block `s` along `axis` (negative: counted from the last dim)."""
    if axis < 0:
        return (Ellipsis, s) + (slice(None),) * (-axis - 1)
    return (slice(None),) * axis + (s,)


def _assembled(xp, count: int, step: int, axis: int, part_of):
    """One result of `count` along `axis` from its blocks, `part_of(block slice)` each,
    written into one array (a cancellation lands between two blocks)."""
    out = None
    for i in range(0, count, step):
        block = slice(i, i + step)
        part = part_of(block)
        if out is None:
            shape = list(part.shape)
            shape[axis] = count
            out = xp.empty(tuple(shape), dtype=part.dtype)
        out[_at(axis, block)] = part
    return out


def _by_batch(fn, xp, op: str, flops: int, first_shape: tuple):
    """conv2d over blocks of its batch; its weight gradient, the sum of the blocks'."""
    if len(first_shape) != 4 or first_shape[0] < 2:
        return fn
    n = first_shape[0]
    step = _step(n, flops)

    def run(x, *rest):
        if op == "conv2d_weight_grad":  # (x, g): both batched
            total = None
            for i in range(0, n, step):
                part = fn(x[i:i + step], rest[0][i:i + step])
                total = part if total is None else xp.add(total, part, out=total)
            return total
        return _assembled(xp, n, step, 0, lambda s: fn(x[s], *rest))
    return run


def _input_grad_by_batch(fn, xp, flops: int, attrs: dict):
    """conv2d_input_grad(g, w) over blocks of g's batch, each block's forward told its own
    input_shape (the attribute the bound `fn` carries is the whole batch's)."""
    shape = tuple(attrs["input_shape"])
    if len(shape) != 4 or shape[0] < 2:
        return fn
    forward = catalog.get("conv2d_input_grad").forward
    n, step = shape[0], _step(shape[0], flops)

    def part(g, w):
        return forward(xp, g, w, **{**attrs, "input_shape": (g.shape[0], *shape[1:])})

    def run(g, w):
        return _assembled(xp, n, step, 0, lambda s: part(g[s], w))
    return run


def _by_plane(fn, xp, flops: int, first_shape: tuple):
    """A pooling op over blocks of the batch (4-D) or channels (3-D, or a batch smaller than
    the channels and than the blocks needed); every operand has the same leading dims."""
    nd = len(first_shape)
    if nd not in (3, 4):
        return fn
    blocks_needed = -(-flops // BLOCK_FLOPS)
    axis = 0 if nd == 3 or first_shape[0] >= min(blocks_needed, first_shape[1]) else 1
    count = first_shape[axis]
    if count < 2:
        return fn
    step = _step(count, flops)

    def run(*arrays):
        return _assembled(xp, count, step, axis,
                          lambda s: fn(*(a[_at(axis, s)] for a in arrays)))
    return run


def _einsum_pairs(fn, equation: str):
    """np.einsum(equation, optimize="greedy") as numpy runs it, pair by pair along its own
    path (np.einsum_path, einsum_call=True: the list np.einsum itself walks), with a pair
    over BLOCK_FLOPS cut into blocks of one of its result's letters."""
    def run(*ops):
        try:
            operands, steps = np.einsum_path(equation, *ops, optimize="greedy",
                                             einsum_call=True)
        except (TypeError, ValueError):  # no internal form, or shapes its planner refuses
            return fn(*ops)  # one call, as before (raising what numpy raises)
        for contraction in steps:
            inds = contraction[0]
            step_eq = contraction[1] if len(contraction) == 3 else contraction[2]
            picked = [operands.pop(x) for x in inds]
            operands.append(_contract(step_eq, picked))  # a cancellation lands between
        return operands[0]
    return run


def _contract(eq: str, ops: list):
    """One step of the path: two operands by numpy's pairwise (matmul) contraction, in
    blocks when it is long; one or more than two by einsum's own loop, as np.einsum does."""
    if len(ops) != 2:
        return np.einsum(eq, *ops, optimize=False)
    pair = ["einsum_path", (0, 1)]
    ins, out = eq.split("->")
    subs = ins.split(",")
    sizes: dict[str, int] = {}
    for sub, a in zip(subs, ops):
        for c, k in zip(sub, a.shape):  # a size-1 dim broadcasts against the other's
            sizes[c] = max(sizes.get(c, k), k)
    work = 2
    for k in sizes.values():
        work *= k
    letter = _cut_letter(subs, out, sizes)
    if work <= BLOCK_FLOPS or letter is None:
        return np.einsum(eq, *ops, optimize=pair)
    count = sizes[letter]
    return _assembled(np, count, _step(count, work), out.index(letter), lambda s: np.einsum(
        eq, *[_cut(a, sub, letter, s) for sub, a in zip(subs, ops)], optimize=pair))


def _cut_letter(subs: list[str], out: str, sizes: dict[str, int]) -> str | None:
    """A letter of the result to cut along: in the first operand if one is (its rows), not
    repeated in any operand (a diagonal), of size 2 or more; None if there is none."""
    fits = [c for c in out if sizes.get(c, 1) >= 2 and all(s.count(c) <= 1 for s in subs)]
    first = [c for c in fits if c in subs[0]]
    return (first or fits or [None])[0]


def _cut(a, sub: str, letter: str, block: slice):
    """`a`'s block along `letter` (whole if it has no such letter, or only size 1 there:
    broadcast; the letter is not repeated in `sub`: _cut_letter)."""
    if letter not in sub or a.shape[sub.index(letter)] == 1:
        return a
    return a[_at(sub.index(letter), block)]
