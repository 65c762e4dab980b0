"""Long products computed in row blocks, so that a cancelled call stops inside them.

A call is cancelled by an exception raised in its thread between two Python steps
(worker/compute.py: Cancellation); one numpy call is one step, however long it runs. A
matrix product over BLOCK_FLOPS operations (mm, matmul, bmm, linear with a batch of rows)
is therefore run as products of blocks of the first operand's rows written into one
result array: the same values (each row's dot products are the same BLAS work), the result
plus one block of extra memory, and a cancellation lands between two blocks, a fraction
of a second apart, instead of after the whole product.

Only on numpy: CuPy queues kernels without waiting for them, so blocks would not stop the
device any sooner.
"""

from __future__ import annotations

from typing import Any

BLOCK_FLOPS = 1e9  # about 10-50 ms of BLAS on one core
ROW_BLOCKED = frozenset({"mm", "matmul", "bmm", "linear"})
BATCH_BLOCKED = frozenset({"conv2d", "conv2d_weight_grad"})


def blocked(fn, xp: Any, op: str, flops: int, first_shape: tuple, out_shape: tuple):
    """`fn`, run in blocks of the first operand's rows when it costs over BLOCK_FLOPS and
    both that operand and the result have rows (a matrix times a vector keeps one call)."""
    if flops <= BLOCK_FLOPS or xp.__name__ != "numpy":
        return fn
    if op in BATCH_BLOCKED:
        return _by_batch(fn, xp, op, flops, first_shape)
    if op not in ROW_BLOCKED:
        return fn
    if len(first_shape) < 2 or len(out_shape) < 2 or first_shape[-2] < 2:
        return fn
    rows = first_shape[-2]
    step = max(1, int(rows * BLOCK_FLOPS // flops))

    def run(a, *rest):
        m = a.shape[-2]
        out = None
        for i in range(0, m, step):  # a cancellation lands here, between two blocks
            part = fn(a[..., i:i + step, :], *rest)
            if out is None:
                out = xp.empty(part.shape[:-2] + (m, part.shape[-1]), dtype=part.dtype)
            out[..., i:i + step, :] = part
        return out
    return run


def _by_batch(fn, xp, op: str, flops: int, first_shape: tuple):
    """conv2d over blocks of its batch; its weight gradient, the sum of the blocks'."""
    if len(first_shape) != 4 or first_shape[0] < 2:
        return fn
    n = first_shape[0]
    step = max(1, int(n * BLOCK_FLOPS // flops))

    def run(x, *rest):
        if op == "conv2d_weight_grad":  # (x, g): both batched
            total = None
            for i in range(0, n, step):
                part = fn(x[i:i + step], rest[0][i:i + step])
                total = part if total is None else xp.add(total, part, out=total)
            return total
        out = None
        for i in range(0, n, step):
            part = fn(x[i:i + step], *rest)
            if out is None:
                out = xp.empty((n, *part.shape[1:]), dtype=part.dtype)
            out[i:i + step] = part
        return out
    return run
