"""Sources (leaf, const, full), identity-like ops (detach, cast), shape ops that the
derivative rules need (reshape, expand, sum_to), where, and the `grad` node.

A `grad` node stands for the vector-Jacobian product of some outputs, seeded with
cotangents, with respect to one input: inputs = [out_1..out_n, seed_1..seed_n, wrt],
attr n. The worker expands grad nodes into ordinary nodes before running the graph, so a
gradient is itself a graph that can be cached, shipped and differentiated again.
"""

from __future__ import annotations

import math
from functools import lru_cache

from . import _batching as _batch
from ._registry import REQUIRED, define
from ._samples import B, C, F, S
from ._types import (
    DTYPES,
    FLOATING,
    ITEMSIZE,
    Meta,
    OpError,
    broadcast_shapes,
    expand_shape,
    scalar_meta,
)


def _check_shape(shape) -> tuple[int, ...]:
    if any(not isinstance(s, int) or s < 0 for s in shape):
        raise OpError(f"invalid shape {tuple(shape)}: sizes must be non-negative integers")
    return tuple(shape)


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise OpError(f"unknown dtype {dtype!r}")
    return dtype


def _infer_leaf(metas, hash, dtype, shape, tag):  # noqa: A002  (the wire's name)
    return Meta(_check_shape(shape), _check_dtype(dtype))


def _infer_full(metas, shape, value, dtype):
    return Meta(_check_shape(shape), _check_dtype(dtype))


def _infer_reshape(metas, shape):
    m = metas[0]
    shape = _check_shape(shape)
    if Meta(shape, m.dtype).numel != m.numel:
        raise OpError(f"shape '{list(shape)}' is invalid for input of size {m.numel}")
    return Meta(shape, m.dtype)


def _infer_expand(metas, shape):
    m = metas[0]
    return Meta(_check_shape(expand_shape(m.shape, tuple(shape))), m.dtype)


def _infer_sum_to(metas, shape):
    m = metas[0]
    shape = _check_shape(shape)
    if broadcast_shapes(shape, m.shape) != m.shape:
        raise OpError(f"sum_to: shape {list(shape)} does not broadcast to {list(m.shape)}")
    return Meta(shape, m.dtype)


def _sum_to(xp, a, shape):
    if not shape and a.ndim and a.dtype.kind == "f" and xp.__name__ == "numpy":
        # All of it (a 0-d operand's gradient, ten a step in a scalar-parameter loop):
        # np.sum's own reduction without its Python wrapper (3.8 -> 1.3 us for 2000 values)
        return xp.add.reduce(a, axis=tuple(range(a.ndim)), keepdims=True).reshape(())
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1
    )
    if axes and axes == tuple(range(len(axes))) and _by_matmul(xp, a):
        # Leading dims only (a bias's gradient): on a GPU a reduction down the columns
        # of a row-major array reads memory across rows; a product with a row of ones is
        # one cuBLAS call that reads it in order (10x faster for 8192x1024 on an H200).
        rows = math.prod(a.shape[:len(axes)])
        out = xp.matmul(_ones_row(xp, xp.cuda.Device().id, rows, a.dtype.name),
                        a.reshape(rows, -1))
    else:
        out = xp.sum(a, axis=axes, keepdims=True) if axes else a
    return out.reshape(shape)


@lru_cache(maxsize=64)
def _ones_row(xp, device: int, rows: int, dtype: str):
    """A (1, rows) row of ones on `device`, made once: never written, only read."""
    return xp.ones((1, rows), dtype)


def _by_matmul(xp, a) -> bool:
    return xp.__name__ != "numpy" and a.dtype.name in ("float32", "float64") and a.size > 0


def _infer_where(metas):
    cond, a, b = metas
    if cond.dtype != "bool":
        from ._types import torch_dtype_name
        raise OpError("where expected condition to be a boolean tensor, but got a tensor "
                      f"with dtype {torch_dtype_name(cond.dtype)}")
    from ._types import result_type
    shape = broadcast_shapes(broadcast_shapes(cond.shape, a.shape), b.shape)
    return Meta(shape, result_type([a, b]))


def _infer_grad(metas, n, create_graph):
    if n < 1 or len(metas) != 2 * n + 1:
        raise OpError(f"grad: expected {2 * n + 1} inputs for n={n}, got {len(metas)}")
    for out, seed in zip(metas[:n], metas[n:2 * n]):
        if out.shape != seed.shape:
            raise OpError(
                f"Mismatch in shape: grad_output[0] has a shape of torch.Size({list(seed.shape)}) "
                f"and output[0] has a shape of torch.Size({list(out.shape)})."
            )
    wrt = metas[-1]
    if wrt.dtype not in FLOATING:
        raise OpError("only Tensors of floating point and complex dtype can require gradients")
    return Meta(wrt.shape, wrt.dtype)


def _check_leaf_bytes(meta: Meta, nbytes: int) -> None:
    if nbytes != meta.numel * ITEMSIZE[meta.dtype]:
        raise OpError(f"leaf of shape {list(meta.shape)} and dtype {meta.dtype} needs "
                      f"{meta.numel * ITEMSIZE[meta.dtype]} bytes, got {nbytes}")


# A leaf is named by its content, so equal tensors are one node. `tag` tells apart equal
# tensors that must stay distinct (two parameters with equal values each get their own
# gradient); the data is still sent and stored once.
define("leaf", batch=_batch.SOURCE, nin=0, infer=_infer_leaf,
       attrs={"hash": ("str", REQUIRED), "dtype": ("str", REQUIRED),
              "shape": ("ints", REQUIRED), "tag": ("str", "")})
define("const", batch=_batch.SOURCE, nin=0, infer=lambda metas, value: scalar_meta(value),
       forward=lambda xp, value: xp.asarray(value, dtype=scalar_meta(value).dtype),
       attrs={"value": ("scalar", REQUIRED)})
define("full", batch=_batch.SOURCE, nin=0, infer=_infer_full,
       forward=lambda xp, shape, value, dtype: xp.full(shape, value, dtype=dtype),
       attrs={"shape": ("ints", REQUIRED), "value": ("scalar", REQUIRED),
              "dtype": ("str", REQUIRED)})
def _infer_arange(metas, end, dtype):
    if end < 0:
        raise OpError("upper bound and larger bound inconsistent with step sign")
    return Meta((end,), _check_dtype(dtype))


# 0..end-1: the index tensors that derivative rules need (einsum's diagonals).
define("arange", batch=_batch.SOURCE, nin=0, infer=_infer_arange,
       forward=lambda xp, end, dtype: xp.arange(end, dtype=dtype),
       attrs={"end": ("int", REQUIRED), "dtype": ("str", "int64")},
       samples=(S(end=4), S(end=0), S(end=3, dtype="float32")))
define("detach", batch=_batch.keep_attrs, infer=lambda metas: Meta(metas[0].shape, metas[0].dtype),
       forward=lambda xp, a: a, samples=(S(F(3, 4)), S(F())))
define("cast",
       batch=_batch.keep_attrs,
       infer=lambda metas, dtype: Meta(metas[0].shape, _check_dtype(dtype)),
       forward=lambda xp, a, dtype: a.astype(dtype),
       vjp=lambda g, x, out, dtype: g.cast(dtype=x.dtype), attrs={"dtype": ("str", REQUIRED)},
       fresh=True,  # astype copies, even to the same dtype
       samples=(S(F(3, 4), dtype="float64"), S(F(3, 4), dtype="float32", fd=False),
                S(F(2, 3), dtype="int64"), S(F(), dtype="float16", fd=False)))
def _expand_vjp(g, x, out, shape):
    # an expand to x's own shape passes g on (PyTorch's sum_to returns it as it is), but
    # not for a 0-d x: PyTorch's sum_to to no dims is always a sum (SumBackward0 next)
    return g if tuple(g.shape) == tuple(x.shape) and x.ndim else g.sum_to(shape=x.shape)


define("reshape",
       batch=_batch.reshaped,
       infer=_infer_reshape, forward=lambda xp, a, shape: a.reshape(shape),
       vjp=lambda g, x, out, shape: g.reshape(shape=x.shape),
       attrs={"shape": ("ints", REQUIRED)},
       samples=(S(F(3, 4), shape=(2, 6)), S(F(), shape=(1, 1)), S(F(0, 3), shape=(3, 0)),
                S(F(2, 3, 4), shape=(24,))))
COPIED_EXPAND = 4096  # elements: on numpy a smaller expand is copied, not viewed


def _expand_forward(xp, a, shape):
    if xp.__name__ == "numpy" and math.prod(shape) <= COPIED_EXPAND:
        # np.broadcast_to is Python code (~2 us); a small copy is one C assignment (0.3 us)
        out = xp.empty(shape, a.dtype)
        out[...] = a
        return out
    return xp.broadcast_to(a, shape)


define("expand", batch=_batch.to_shape('shape'), infer=_infer_expand, forward=_expand_forward,
       vjp=_expand_vjp, attrs={"shape": ("ints", REQUIRED)},
       samples=(S(F(3), shape=(2, 3)), S(F(2, 1), shape=(2, 4)), S(F(), shape=(2, 2)),
                S(F(1, 3), shape=(0, 3))))
define("sum_to", batch=_batch.sum_to, infer=_infer_sum_to, forward=_sum_to,
       vjp=lambda g, x, out, shape: g.expand(shape=x.shape),
       attrs={"shape": ("ints", REQUIRED)},
       samples=(S(F(2, 3), shape=(3,)), S(F(2, 4), shape=(2, 1)), S(F(2, 2), shape=()),
                S(F(0, 3), shape=(1, 3))))
define("where", batch=_batch.elementwise, nin=3, infer=lambda metas: _infer_where(metas),
       forward=lambda xp, c, a, b: xp.where(c, a, b),
       vjp=(None,
            lambda g, c, x, y, out: c.where(g, 0.0),
            lambda g, c, x, y, out: c.where(0.0, g)), promote=(1, 2), fusable=True,
       samples=(S(B(3, 4), F(3, 4), F(3, 4)), S(B(3, 1), F(1, 4), F()),
                S(B(0, 2), F(2), F(0, 2)), S(B(2, 3), F(2, 3), C(0.5))))
define("grad",
       batch=_batch.all_batched(),
       nin=-1, infer=_infer_grad,
       # create_graph: the backward records a graph (PyTorch's GradMode there), which a few
       # of PyTorch's rules branch on (prod's; see _registry.GRAD_MODE)
       attrs={"n": ("int", REQUIRED), "create_graph": ("bool", False)})


# --- in-place changes that autograd does not see ----------------------------------------------
def _infer_overwrite(metas):
    history, value = metas
    if history.shape != value.shape or history.dtype != value.dtype:
        raise OpError(f"overwrite: the new value ({value.dtype}{list(value.shape)}) must have "
                      f"the shape and dtype of the tensor it replaces "
                      f"({history.dtype}{list(history.shape)})")
    return Meta(history.shape, history.dtype)


# overwrite(history, value): the value of `value`, the gradient of `history`. What an in-place
# op under no_grad (or x.data's update) leaves in a tensor that requires grad: PyTorch keeps
# the tensor's grad_fn, so gradients flow through its old history unchanged (identity), and
# the new value is exact (no straight-through arithmetic, which rounds).
_IN_PLACE = _batch.NoRule("in-place bookkeeping: vmap maps a function that updates a "
                           "batched tensor in place per slice")
define("overwrite",
       batch=_IN_PLACE,
       nin=2, infer=_infer_overwrite, forward=lambda xp, history, value: value,
       vjp=(lambda g, history, value, out: g, None),
       # Not the derivative of the forward by design: no finite differences.
       samples=(S(F(3, 4), F(3, 4), fd=False), S(F(), F(), fd=False),
                S(F(0, 3), F(0, 3), fd=False), S(F(2, 1, 3), F(2, 1, 3), fd=False)))


# replace(history, value): fill_/zero_/copy_ recorded by autograd. The value is `value`'s; the
# tensor's old history gets PyTorch's zeros_like(grad), a zero gradient that still flows
# through it (so a rule meeting 0 there gives what PyTorch's does, 0 / 0 = NaN included),
# and `value` gets the gradient.
define("replace",
       batch=_IN_PLACE,
       nin=2, infer=_infer_overwrite, forward=lambda xp, history, value: value,
       vjp=(lambda g, history, value, out: g.full_like(0.0),
            lambda g, history, value, out: g),
       samples=(S(F(3, 4), F(3, 4)), S(F(), F()), S(F(0, 3), F(0, 3)),
                S(F(2, 1, 3), F(2, 1, 3))))
