"""Ops PyTorch users reach for that the catalog can express exactly with ops it has: diff,
roll, movedim/moveaxis, trace and addmm, each with PyTorch's checks, messages and grad_fn
name (its last node named as PyTorch's: RollBackward0, TraceBackward0, AddmmBackward0; diff
and movedim are composites in PyTorch too: SubBackward0, PermuteBackward0).

Each function carries `forms`: the Tensor forms PyTorch has (m: method, i: in-place method;
scripts/gen_tensor_methods.py generates them)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from remotegrad.proto.catalog import FLOATING
from remotegrad.proto.catalog._types import torch_dtype_name

from ._creation import arange, zeros
from ._dtypes import bool as bool_
from ._tensor_base import TensorBase, apply
from ._tensor_meta import _wrap_dim


def _forms(forms: str):
    def mark(fn):
        fn.forms = forms
        return fn
    return mark


def _narrow(t: TensorBase, dim: int, start: int, length: int) -> TensorBase:
    return apply("narrow", t, dim=dim, start=start, length=length)


@_forms("m")
def diff(input: TensorBase, n: int = 1, dim: int = -1, prepend=None, append=None
         ) -> TensorBase:
    """The n-th forward difference along dim (logical_xor for bool, as PyTorch)."""
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    if input.dim() == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    for extra in (prepend, append):
        if extra is not None and extra.dim() != input.dim():
            raise RuntimeError("diff expects prepend or append to be the same dimension as "
                               "input")
    dim = _wrap_dim(dim, input.dim())
    parts = [t for t in (prepend, input, append) if t is not None]
    x = apply("cat", *parts, dim=dim) if len(parts) > 1 else input
    if n == 0:
        return apply("cast", x, dtype=x.dtype.name, torch_name="CopyBackwards")
    for _ in range(n):
        length = max(x.shape[dim] - 1, 0)
        ahead, behind = _narrow(x, dim, 1 if length else 0, length), _narrow(x, dim, 0, length)
        x = apply("logical_xor" if x.dtype.name == "bool" else "sub", ahead, behind)
    return x


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, Sequence) else (value,)


@_forms("m")
def roll(input: TensorBase, shifts, dims=None) -> TensorBase:
    """Elements shifted along dims, wrapping around (all of them flattened when dims is
    None), as a cat of two slices per dim."""
    shifts = _as_tuple(shifts)
    if not shifts:
        raise RuntimeError("`shifts` required")
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                               "dims:0")
        flat = apply("reshape", input, shape=(input.numel(),))
        rolled = roll(flat, shifts, 0)
        return apply("reshape", rolled, shape=tuple(input.shape), torch_name="RollBackward0")
    dims = _as_tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims:{len(dims)}")
    moves = []
    for shift, d in zip(shifts, dims):
        d = _wrap_dim(d, input.dim())
        size = input.shape[d]
        if size and shift % size:
            moves.append((d, size, shift % size))
    if not moves:  # nothing moves: a copy, named as PyTorch's node
        return apply("cast", input, dtype=input.dtype.name, torch_name="RollBackward0")
    x = input
    for i, (d, size, s) in enumerate(moves):
        name = "RollBackward0" if i == len(moves) - 1 else None
        x = apply("cat", _narrow(x, d, size - s, s), _narrow(x, d, 0, size - s), dim=d,
                  torch_name=name)
    return x


@_forms("m")
def movedim(input: TensorBase, source, destination) -> TensorBase:
    src, dst = _as_tuple(source), _as_tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} "
                           f"dims) should contain the same number of dims as destination "
                           f"({list(dst)} dims)")
    n = input.dim()
    src = [_wrap_dim(d, n) for d in src]
    dst = [_wrap_dim(d, n) for d in dst]
    for what, dims in (("source", src), ("destination", dst)):
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"movedim: repeated dim in `{what}` ({dims})")
    order: list[int | None] = [None] * n
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(d for d in range(n) if d not in src)
    order = [next(rest) if o is None else o for o in order]
    return apply("permute", input, dims=tuple(order))


moveaxis = _forms("m")(lambda input, source, destination: movedim(input, source, destination))
moveaxis.__name__ = moveaxis.__qualname__ = "moveaxis"


@_forms("m")
def trace(input: TensorBase) -> TensorBase:
    """The sum of the main diagonal of a matrix (integers summed as int64)."""
    if input.dim() != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.dim()}")
    if input.dtype.name == "bool":
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    k = builtins.min(input.shape)
    idx = arange(k)
    return apply("sum", input[idx, idx], torch_name="TraceBackward0")


def _matrix(name: str, t: TensorBase) -> None:
    if t.dim() != 2:
        raise RuntimeError(f"{name} must be a matrix, got {t.dim()}-D tensor")


@_forms("mi")
def addmm(input: TensorBase, mat1: TensorBase, mat2: TensorBase, *, beta=1, alpha=1
          ) -> TensorBase:
    """beta·input + alpha·(mat1 @ mat2); with beta=0 input is ignored (its NaNs too) but
    still gets a zero gradient, as in PyTorch."""
    _matrix("mat1", mat1)
    _matrix("mat2", mat2)
    for what, t in (("self", input), ("mat1", mat1)):
        if t.dtype != mat2.dtype:
            raise RuntimeError(f"{what} and mat2 must have the same dtype, but got "
                               f"{torch_dtype_name(t.dtype.name)} and "
                               f"{torch_dtype_name(mat2.dtype.name)}")
    product = apply("mm", mat1, mat2)  # the shape check, PyTorch's message
    shape = tuple(product.shape)
    base = input if tuple(input.shape) == shape else apply("expand", input, shape=shape)
    if input.dtype.name not in FLOATING:  # PyTorch casts the scalars to the integer dtype
        beta, alpha = builtins.int(beta), builtins.int(alpha)
    scaled = product if alpha == 1 else apply("mul", product, alpha)
    if beta == 0:
        # input ignored (its NaNs too) but kept on the graph for its zero gradient: a where
        # that never picks it, adding -0.0 (x + -0.0 is x exactly, signed zeros included)
        never = zeros(shape, dtype=bool_)
        kept = apply("where", never, base, -0.0 if input.dtype.name in FLOATING else 0)
        return apply("add", scaled, kept, torch_name="AddmmBackward0")
    added = base if beta == 1 else apply("mul", base, beta)
    return apply("add", added, scaled, torch_name="AddmmBackward0")
