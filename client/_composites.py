"""Ops PyTorch users reach for that the catalog can express exactly with ops it has: diff,
roll, movedim/moveaxis, trace, addmm, diag, diagonal, tile, masked_select, take_along_dim,
frac, sgn, nan_to_num, cross, kron, tensordot, cumprod, fmax, fmin, count_nonzero,
tril_indices and triu_indices, each with PyTorch's checks, messages and grad_fn name (the
last node named as PyTorch's: RollBackward0, TraceBackward0, AddmmBackward0,
DiagonalBackward0, ...; those that are composites in PyTorch too keep their parts' names:
SubBackward0, PermuteBackward0, RepeatBackward0, GatherBackward0).

Each function carries `forms`: the Tensor forms PyTorch has (m: method, i: in-place method;
scripts/gen_tensor_methods.py generates them)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np
from remotegrad.proto.catalog import FLOATING
from remotegrad.proto.catalog._types import broadcast_shapes, torch_dtype_name

from . import _views
from ._arg_check import _FLOATS, float_arg
from ._creation import arange, tensor, zeros
from ._dtypes import bool as bool_
from ._dtypes import int64
from ._grad_mode import is_grad_enabled
from ._shape import _checked, _index_args
from ._tensor_base import TensorBase, apply
from ._tensor_meta import _wrap_dim
from ._warn import warn_user


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
    if n == 0:  # a 0-d tensor's dims 0 and -1 are its one pseudo-dim: PyTorch's alias
        return apply("permute", input, dims=(), torch_name="AliasBackward0")
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
    idx = arange(builtins.min(input.shape))
    return apply("sum", _index(input, (idx, idx), "DiagonalBackward0"),
                 torch_name="TraceBackward0")


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


def _named(t: TensorBase, name: str) -> TensorBase:
    """t recorded once more under PyTorch's grad_fn name (a copy to its own dtype), where
    the op that made it (indexing, scatter) has a name of its own."""
    return apply("cast", t, dtype=t.dtype.name, torch_name=name)


def _index(t: TensorBase, key: tuple, name: str) -> TensorBase:
    """t[key] recorded under PyTorch's grad_fn name for what the indexing stands for (a
    diagonal saves no tensor there; an index node would)."""
    text, tensors, counts, _ = _index_args(key)
    return apply("index", t, *tensors, key=text, mask_counts=counts, torch_name=name)


@_forms("m")
def diagonal(input: TensorBase, offset: int = 0, dim1: int = 0, dim2: int = 1) -> TensorBase:
    """The diagonal of dims (dim1, dim2) as the last dim, by indexing with two aranges: a
    view of input, as PyTorch's (its geometry: _strides._diagonal)."""
    try:
        out = _diagonal(input, offset, dim1, dim2, "DiagonalBackward0")
    except Exception:
        # PyTorch's autograd reads a refused view's history before the kernel checks dims
        refused = _views.check_read(input, True) if input._view is not None else None
        if refused and is_grad_enabled():
            raise RuntimeError(refused) from None
        raise
    attrs = {"offset": builtins.int(offset), "dim1": _wrap_dim(dim1, input.dim()),
             "dim2": _wrap_dim(dim2, input.dim())}
    _views.track(input, out, step=("diagonal", attrs))
    if input.requires_grad and not is_grad_enabled():
        # PyTorch's view made under no_grad requires grad, with no history (apply does
        # this for the view ops it records; this one is composed)
        out._requires_grad = out._no_grad_view = True
    return out


_views.COMPOSED["diagonal"] = diagonal  # a refresh of its view replays it


def _diagonal(input: TensorBase, offset: int, dim1: int, dim2: int, name: str
              ) -> TensorBase:
    n = input.dim()
    d1, d2 = _wrap_dim(dim1, n), _wrap_dim(dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = [d for d in range(n) if d not in (d1, d2)]
    moved = apply("permute", input, dims=(*rest, d1, d2)) if (d1, d2) != (n - 2, n - 1) \
        else input
    rows, cols = input.shape[d1], input.shape[d2]
    r0, c0 = builtins.max(-offset, 0), builtins.max(offset, 0)
    k = builtins.max(builtins.min(rows - r0, cols - c0), 0)
    return _index(moved, (Ellipsis, arange(r0, r0 + k), arange(c0, c0 + k)), name)


@_forms("m")
def diag(input: TensorBase, diagonal: int = 0) -> TensorBase:
    """A matrix with the vector on a diagonal, or a matrix's diagonal as a vector."""
    if input.dim() == 2:
        return _diagonal(input, diagonal, 0, 1, "DiagonalBackward0_copy")
    if input.dim() != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.dim()}D")
    n = input.shape[0]
    m = n + abs(diagonal)
    base = zeros((m, m), dtype=input.dtype)
    if diagonal >= 0:  # row i holds input[i] at column i + diagonal
        index = (arange(n) + diagonal).reshape(n, 1)
        return apply("scatter", base, index, input.reshape(n, 1), dim=1,
                     torch_name="DiagEmbedBackward0")
    index = (arange(n) - diagonal).reshape(1, n)  # column j holds input[j] at row j - d
    return apply("scatter", base, index, input.reshape(1, n), dim=0,
                 torch_name="DiagEmbedBackward0")


@_forms("m")
def tile(input: TensorBase, dims) -> TensorBase:
    """repeat over dims padded with leading ones to the input's dims (RepeatBackward0)."""
    dims = tuple(_as_tuple(dims))
    reps = (1,) * (input.dim() - len(dims)) + dims
    shape = (1,) * (len(reps) - input.dim()) + tuple(input.shape)
    sizes = [s * r for s, r in zip(shape, reps)]
    negative = [s for s in sizes if s < 0]
    if negative:
        raise RuntimeError(f"Trying to create tensor with negative dimension {negative[0]}: "
                           f"{sizes}")
    return input.repeat(*reps)


@_forms("m")
def masked_select(input: TensorBase, mask: TensorBase) -> TensorBase:
    """The elements where the (broadcast) mask is True, as a 1-D tensor."""
    if mask.dtype.name != "bool":
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    shape = _broadcast(tuple(mask.shape), tuple(input.shape))
    x = input if tuple(input.shape) == shape else apply("expand", input, shape=shape)
    m = mask if tuple(mask.shape) == shape else apply("expand", mask, shape=shape)
    return _named(x[m], "MaskedSelectBackward0")


def _broadcast(a: tuple, b: tuple) -> tuple:
    """PyTorch's broadcast of two shapes, its message naming a (the first) and b."""
    return _checked(broadcast_shapes, a, b)


@_forms("m")
def take_along_dim(input: TensorBase, indices: TensorBase, dim: int | None = None
                   ) -> TensorBase:
    """gather along dim with input and indices broadcast in the other dims (the flattened
    input when dim is None)."""
    if indices.dtype.name != "int64":
        raise RuntimeError("torch.take_along_dim(): dtype of indices should be Long but got "
                           f"{torch_dtype_name(indices.dtype.name)}")
    if dim is None:
        flat = apply("reshape", input, shape=(input.numel(),))
        return apply("gather", flat, apply("reshape", indices, shape=(indices.numel(),)),
                     dim=0)
    if input.dim() != indices.dim():
        raise RuntimeError("torch.take_along_dim(): input and indices should have the same "
                           f"number of dimensions, but got {input.dim()} dimensions for input, "
                           f"and {indices.dim()} dimensions for indices")
    d = _wrap_dim(dim, input.dim())
    sizes = list(input.shape)
    sizes[d] = indices.shape[d]
    shape = _broadcast(tuple(sizes), tuple(indices.shape))
    idx = indices if tuple(indices.shape) == shape else apply("expand", indices, shape=shape)
    sizes = list(shape)
    sizes[d] = input.shape[d]
    x = input if tuple(input.shape) == tuple(sizes) else apply("expand", input,
                                                               shape=tuple(sizes))
    return apply("gather", x, idx, dim=d)


@_forms("mi")
def frac(input: TensorBase) -> TensorBase:
    """input - trunc(input): the fractional part, with the input's sign."""
    if input.dtype.name not in FLOATING:
        raise NotImplementedError(f"\"frac_cpu\" not implemented for "
                                  f"'{torch_dtype_name(input.dtype.name)}'")
    return apply("sub", input, apply("trunc", input), torch_name="FracBackward0")


@_forms("mi")
def sgn(input: TensorBase) -> TensorBase:
    """sign, for the real dtypes there are here (SgnBackward0)."""
    return apply("sign", input, torch_name="SgnBackward0")


def _indices(lower: bool, row: int, col: int, offset: int, dtype) -> TensorBase:
    for what, n in (("row", row), ("col", col)):
        if n < 0:
            raise RuntimeError(f"{what} must be non-negative, got{n}")
    rows, cols = np.tril_indices(row, offset, col) if lower else np.triu_indices(row, offset,
                                                                                 col)
    return tensor(np.stack([rows, cols]).astype(np.int64), dtype=dtype)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 layout=None) -> TensorBase:
    return _indices(True, row, col, offset, dtype or int64)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 layout=None) -> TensorBase:
    return _indices(False, row, col, offset, dtype or int64)


_FINITE_MAX = {"float16": 65504.0, "float32": float(np.finfo(np.float32).max),
               "float64": float(np.finfo(np.float64).max)}


@_forms("mi")
def nan_to_num(input: TensorBase, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> TensorBase:
    """NaN, +inf and -inf replaced (by 0 and the dtype's largest finite values unless
    given); the gradient flows where the input is finite, as PyTorch's."""
    # (Tensor.nan_to_num's positions; torch.nan_to_num's were checked by _arg_check)
    nan, posinf, neginf = (float_arg("nan_to_num", p, v, i) for i, (p, v) in enumerate(
        zip(_FLOATS, (nan, posinf, neginf)), start=1))
    if input.dtype.name not in FLOATING:
        return apply("cast", input, dtype=input.dtype.name)  # integers: a copy, as there
    big = _FINITE_MAX[input.dtype.name]
    high = big if posinf is None else posinf
    low = -big if neginf is None else neginf
    out = apply("where", apply("eq", input, float("-inf")), low, input)
    out = apply("where", apply("eq", input, float("inf")), high, out)
    return apply("where", apply("isnan", input), nan, out, torch_name="NanToNumBackward0")


@_forms("m")
def cross(input: TensorBase, other: TensorBase, dim: int | None = None) -> TensorBase:
    """The cross product of 3-vectors along dim (without dim: the first dim of size 3,
    with PyTorch's deprecation warning)."""
    if input.dim() != other.dim():
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    if input.dtype != other.dtype:
        raise RuntimeError(f"expected scalar type {torch_dtype_name(input.dtype.name)} but "
                           f"found {torch_dtype_name(other.dtype.name)}")
    if dim is None:
        warn_user("Using torch.cross without specifying the dim arg is deprecated.\nPlease "
                  "either pass the dim explicitly or simply use torch.linalg.cross.\nThe "
                  "default value of dim will change to agree with that of linalg.cross in a "
                  "future release.")
        shape = _broadcast(tuple(input.shape), tuple(other.shape))
        dim = next((d for d, s in enumerate(shape) if s == 3), -1)
    d = _wrap_dim(dim, input.dim())
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {d} must have length 3. Got "
                           f"{input.shape[d]} and {other.shape[d]}")
    a = [_narrow(input, d, i, 1) for i in range(3)]
    b = [_narrow(other, d, i, 1) for i in range(3)]
    parts = [apply("sub", apply("mul", a[j], b[k]), apply("mul", a[k], b[j]))
             for j, k in ((1, 2), (2, 0), (0, 1))]
    return apply("cat", *parts, dim=d, torch_name="LinalgCrossBackward0")


@_forms("m")
def kron(input: TensorBase, other: TensorBase) -> TensorBase:
    """The Kronecker product: each element of input times all of other, blocks laid out
    as input's elements (a broadcast product of interleaved shapes, then one reshape)."""
    n = builtins.max(input.dim(), other.dim())
    a_shape = (1,) * (n - input.dim()) + tuple(input.shape)
    b_shape = (1,) * (n - other.dim()) + tuple(other.shape)
    a = apply("reshape", input, shape=tuple(x for s in a_shape for x in (s, 1)))
    b = apply("reshape", other, shape=tuple(x for s in b_shape for x in (1, s)))
    return apply("reshape", apply("mul", a, b), shape=tuple(s * t for s, t in
                                                           zip(a_shape, b_shape)),
                 torch_name="UnsafeViewBackward0")


def _contracted(dims, a: TensorBase, b: TensorBase) -> tuple[list[int], list[int]]:
    if isinstance(dims, TensorBase):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > a.dim() or dims > b.dim():
            raise RuntimeError("tensordot expects dims < ndim_a or ndim_b, but got "
                               f"dims={dims}")
        return list(range(a.dim() - dims, a.dim())), list(range(dims))
    da, db = (list(_as_tuple(d)) for d in dims)
    if len(da) != len(db):
        raise RuntimeError("both dimension lists should have same length")
    return [_wrap_dim(d, a.dim()) for d in da], [_wrap_dim(d, b.dim()) for d in db]


def tensordot(a: TensorBase, b: TensorBase, dims=2, out=None) -> TensorBase:
    """Contract dims of a with dims of b: both permuted and reshaped to matrices, one mm,
    the free dims restored (PyTorch's own route, so its rounding)."""
    if a.dtype != b.dtype:
        raise RuntimeError("both inputs should have same dtype")
    da, db = _contracted(dims, a, b)
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size "
                               f"{a.shape[i]} in dim {i} and second has size {b.shape[j]} in "
                               f"dim {j}")
    free_a = [d for d in range(a.dim()) if d not in da]
    free_b = [d for d in range(b.dim()) if d not in db]
    size = rows = cols = 1
    for d in da:
        size *= a.shape[d]
    for d in free_a:
        rows *= a.shape[d]
    for d in free_b:
        cols *= b.shape[d]
    left = apply("reshape", apply("permute", a, dims=(*free_a, *da)), shape=(rows, size))
    right = apply("reshape", apply("permute", b, dims=(*db, *free_b)), shape=(size, cols))
    shape = tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b)
    return apply("reshape", apply("mm", left, right), shape=shape, torch_name="ViewBackward0")


_ACCUMULATE = {"float16": "float32", "float32": "float64", "float64": "float64"}


@_forms("mi")
def cumprod(input: TensorBase, dim: int, *, dtype=None) -> TensorBase:
    """The running product along dim, one multiplication per element in order, in PyTorch's
    CPU accumulation type (float32 in float64, each output rounded back), so its values;
    integers and bool in int64 as there. The graph grows with the dim's length."""
    x = input if dtype is None else input.to(dtype)
    if x.dtype.name not in FLOATING and x.dtype.name != "int64":
        x = apply("cast", x, dtype="int64")
    out_dtype = x.dtype.name
    d = _wrap_dim(dim, x.dim())
    if x.dim() == 0 or x.shape[d] <= 1:
        return apply("cast", x, dtype=out_dtype, torch_name="CumprodBackward0")
    wide = _ACCUMULATE.get(out_dtype, out_dtype)
    acc_input = x if wide == out_dtype else apply("cast", x, dtype=wide)
    acc = _narrow(acc_input, d, 0, 1)
    steps = [acc]
    for i in range(1, x.shape[d]):
        acc = apply("mul", acc, _narrow(acc_input, d, i, 1))
        steps.append(acc)
    if wide != out_dtype:
        steps = [apply("cast", s, dtype=out_dtype) for s in steps]
    return apply("cat", *steps, dim=d, torch_name="CumprodBackward0")


def _fextreme(name: str, keep_first: str, input: TensorBase, other: TensorBase
              ) -> TensorBase:
    """fmax/fmin: the larger (smaller) value, NaN only where both are; input wins ties and
    where other is NaN, which is where PyTorch's rule sends the gradient too."""
    first = apply("logical_or", apply(keep_first, input, other), apply("isnan", other))
    return apply("where", first, input, other, torch_name=name)


@_forms("m")
def fmax(input: TensorBase, other: TensorBase, *, out=None) -> TensorBase:
    return _fextreme("FmaxBackward0", "ge", input, other)


@_forms("m")
def fmin(input: TensorBase, other: TensorBase, *, out=None) -> TensorBase:
    return _fextreme("FminBackward0", "le", input, other)


@_forms("m")
def count_nonzero(input: TensorBase, dim=None) -> TensorBase:
    """How many elements are not zero (over dim, or all), as int64."""
    dims = None if dim is None else tuple(_as_tuple(dim))
    nonzero = apply("ne", input, 0)
    return apply("sum", nonzero) if dims is None else apply("sum", nonzero, dim=dims)
