"""Shape methods whose PyTorch signature is not a single catalog call: varargs sizes
(permute, repeat, flip), several outputs (split, chunk, unbind), lists of tensors (cat,
stack), transposes (T, mT, t), and indexing (`x[key]`, `x[key] = value`)."""

from __future__ import annotations

import builtins
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from remotegrad.proto import catalog
from remotegrad.proto.catalog.indexing import parse_key, whole_slice
from remotegrad.proto.catalog.shape import piece_sizes

from . import _index_put, _views
from ._arg_check import FLATTEN_DIMS, int_arg
from ._creation import ones, tensor
from ._grad_mode import _state as _grad_state
from ._inplace import scalar_as
from ._node import builtin_error
from ._op_table import TABLE, last_view
from ._ops import bind
from ._operators import reshape
from ._select import where_one
from ._strides import compute_stride, is_contiguous, overlaps
from ._tensor_base import Scalar, TensorBase, apply, batch
from ._tensor_meta import _wrap_dim
from ._views import geometry
from ._warn import warn_user

if TYPE_CHECKING:
    from ._tensor import Tensor


def _ints(args: tuple) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(builtins.int(a) for a in args)


def permute(self: Tensor, *dims) -> Tensor:
    if not dims:
        raise TypeError('permute() missing 1 required positional arguments: "dims"')
    return apply("permute", self, dims=_ints(dims))


def repeat(self: Tensor, *sizes) -> Tensor:
    return apply("repeat", self, repeats=_ints(sizes))


def flip(self: Tensor, *dims) -> Tensor:
    if not dims:
        raise TypeError('flip() missing 1 required positional arguments: "dims"')
    return apply("flip", self, dims=_ints(dims))


def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """As PyTorch: a tensor of one or more dims with nothing to merge is returned as is;
    else its reshape (a view where the strides allow, else a copy)."""
    # (the method's positions; torch.flatten's were checked by _arg_check)
    start_dim, end_dim = (int_arg("flatten", p, d, i) for i, (p, d) in enumerate(
        zip(FLATTEN_DIMS, (start_dim, end_dim)), start=1))
    n = self.dim()
    for d in (start_dim, end_dim) if n == 0 else ():  # a 0-d tensor's dims: -1 and 0
        if d not in (-1, 0):
            raise IndexError("Dimension out of range (expected to be in range of [-1, 0], "
                             f"but got {d})")
    if n == 0 or not (-n <= start_dim < n and -n <= end_dim < n) \
            or start_dim % n > end_dim % n:  # 0-d (a view), or the op's own error
        return apply("flatten", self, start_dim=start_dim, end_dim=end_dim)
    if start_dim % n == end_dim % n:
        return self
    s, e = start_dim % n, end_dim % n
    shape = tuple(self.shape)
    shape = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
    geom = geometry(self)
    if compute_stride(geom[1], geom[2], shape) is None:
        return reshape(self, shape)
    return apply("flatten", self, start_dim=start_dim, end_dim=end_dim,
                 torch_name="ViewBackward0" if is_contiguous(geom) else "ReshapeAliasBackward0")


def squeeze(self: Tensor, dim=None) -> Tensor:
    if dim is None:
        return apply("squeeze", self, torch_name="SqueezeBackward0")
    name = "SqueezeBackward1" if isinstance(dim, builtins.int) else "SqueezeBackward2"
    if not isinstance(dim, builtins.int):
        _once(self, dim)
    return apply("squeeze", self, dim=dim if isinstance(dim, builtins.int) else tuple(dim),
                 torch_name=name)


def _once(self: Tensor, dims) -> None:
    """PyTorch's dim_list_to_bitset: every dim in range, none twice."""
    seen = set()
    for d in dims:
        d = _wrap_dim(d, self.dim())
        if d in seen:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        seen.add(d)


def _t(self: Tensor, name: str = "TBackward0") -> Tensor:
    """t(); t_() is PyTorch's TBackward1."""
    if self.dim() > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{self.dim()}D")
    if self.dim() < 2:  # PyTorch: a new view all the same (TBackward0), not self
        return apply("permute", self, dims=tuple(range(self.dim())), torch_name=name)
    return apply("transpose", self, dim0=0, dim1=1, torch_name=name)


def _T(self: Tensor) -> Tensor:
    if self.dim() == 0:
        warn_user("Tensor.T is deprecated on 0-D tensors. This function is the identity in "
                  "these cases.")
    elif self.dim() != 2:
        warn_user("The use of `x.T` on tensors of dimension other than 2 to reverse their "
                  "shape is deprecated and it will throw an error in a future release. "
                  "Consider `x.mT` to transpose batches of matrices or `x.permute(*torch."
                  "arange(x.ndim - 1, -1, -1))` to reverse the dimensions of a tensor.")
    return apply("permute", self, dims=tuple(range(self.dim() - 1, -1, -1)))


def _mT(self: Tensor, name: str = "mT") -> Tensor:
    if self.dim() == 0:  # PyTorch: the identity, with a deprecation warning
        warn_user(f"Tensor.{name} is deprecated on 0-D tensors. "
                  + ("This function is the identity in these cases." if name == "mT"
                     else "Consider using x.conj()."))
        return self
    if self.dim() < 2:
        raise RuntimeError(f"tensor.{name} is only supported on matrices or batches of "
                           f"matrices. Got {self.dim()}-D tensor.")
    return apply("transpose", self, dim0=-2, dim1=-1)


def _broadcast_to(self: Tensor, *size) -> Tensor:
    return self.expand(*size)


def _together(pieces: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Pieces of one tensor are fetched together: reading one costs the round trip for all."""
    batch(pieces)
    return pieces


def _checked(rule, *args) -> list[int]:
    try:
        return rule(*args)
    except catalog.OpError as e:
        raise builtin_error(str(e)) from None


def split(self: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    sections = (builtins.int(split_size_or_sections)
                if isinstance(split_size_or_sections, (builtins.int, np.integer))
                else tuple(builtins.int(s) for s in split_size_or_sections))
    count = len(_checked(piece_sizes, tuple(self.shape), dim, "split", sections))
    name = "SplitBackward0" if isinstance(sections, builtins.int) else "SplitWithSizesBackward0"
    return _together(tuple(apply("split", self, split_size_or_sections=sections, dim=dim,
                                 index=i, torch_name=name) for i in range(count)))


def chunk(self: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    if not isinstance(chunks, (builtins.int, np.integer)) or isinstance(chunks, builtins.bool):
        raise TypeError(f"chunk(): argument 'chunks' (position 1) must be int, not "
                        f"{type(chunks).__name__}")
    count = len(_checked(piece_sizes, tuple(self.shape), dim, "chunk", builtins.int(chunks)))
    # PyTorch chunks nothing into empty pieces by split_with_sizes
    name = "SplitWithSizesBackward0" if self.shape[dim] == 0 else None
    return _together(tuple(apply("chunk", self, chunks=builtins.int(chunks), dim=dim, index=i,
                                 torch_name=name) for i in range(count)))


def unbind(self: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    try:
        dim = _wrap_dim(dim, self.dim())
        if self.dim() == 0:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    except IndexError:
        # PyTorch's autograd reads the history (its view refusal) before the dim is checked
        refused = _views.check_read(self, True) if self._view is not None else None
        if refused and _grad_state.enabled:
            raise RuntimeError(refused) from None
        raise
    n = self.shape[dim]
    lead = ":," * (dim % self.dim())
    return _together(tuple(apply("index", self, key=f"{lead}{i}", torch_name="UnbindBackward0")
                           for i in range(n)))


def cat(tensors, dim: int = 0, *, out=None) -> Tensor:
    return apply("cat", *tensors, dim=dim)


def stack(tensors, dim: int = 0, *, out=None) -> Tensor:
    return apply("stack", *tensors, dim=dim)


def einsum(equation: str, *operands) -> Tensor:
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return apply("einsum", *operands, equation=equation.replace(" ", ""))


def where(condition: Tensor, input=None, other=None) -> Tensor:
    if input is None and other is None:
        return where_one(condition)
    return apply("where", condition, input, other)


# --- indexing --------------------------------------------------------------------------------
def _key_item(item: Any, tensors: list) -> tuple[str, str]:
    """One item of an index → (its text in the catalog's key, the grad_fn it implies)."""
    if item is None:
        return "None", "UnsqueezeBackward0"
    if item is Ellipsis:
        return "...", ""
    if isinstance(item, slice):
        parts = [("" if v is None else str(builtins.int(v)))
                 for v in (item.start, item.stop, item.step)]
        return ":".join(parts), "SliceBackward0"
    if isinstance(item, (builtins.int, np.integer)) and not isinstance(item, builtins.bool):
        return str(builtins.int(item)), "SelectBackward0"
    if isinstance(item, TensorBase):
        if item.dtype.name == "uint8":  # a byte mask: PyTorch's deprecated bool mask
            warn_user(UINT8_INDEX)
            item = item.bool()
        tensors.append(item)
        return "T", "IndexBackward0"
    if isinstance(item, (list, np.ndarray, builtins.bool)):
        tensors.append(tensor(item))
        return "T", "IndexBackward0"
    raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                     "Variables are valid indices (got " + type(item).__name__ + ")")


UINT8_INDEX = ("indexing with dtype torch.uint8 is now deprecated, please use a dtype "
               "torch.bool instead.")
UINT8_FILL = "masked_fill_ only supports boolean masks, but got mask with dtype unsigned char"


def _uint8_fill(key: Any, value: Any) -> None:
    """x[byte_mask] = one value is PyTorch's masked_fill_ (its only tensor index a mask, one
    value), which takes a bool mask only."""
    items = key if isinstance(key, (tuple, list)) else (key,)
    found = [k for k in items if isinstance(k, TensorBase)]
    one = isinstance(value, Scalar) or (isinstance(value, TensorBase) and value.numel() == 1)
    if len(found) == 1 and found[0].dtype.name == "uint8" and one:
        raise RuntimeError(UINT8_FILL)


def _sequence_as_tuple(key: Any) -> bool:
    """PyTorch (like old NumPy) reads a list holding lists, slices or None as a tuple."""
    return isinstance(key, list) and any(
        isinstance(k, (list, tuple, slice, TensorBase)) or k is None or k is Ellipsis for k in key)


def _index_args(key: Any) -> tuple[str, list[Tensor], tuple[int, ...], str]:
    if _sequence_as_tuple(key):
        key = tuple(key)
    items = key if isinstance(key, tuple) else (key,)
    tensors: list[Tensor] = []
    texts, names = [], []
    for item in items:
        text, name = _key_item(item, tensors)
        texts.append(text)
        names.append(name)
    counts = tuple(builtins.int(t.sum().item()) for t in tensors if t.dtype.name == "bool")
    if "IndexBackward0" in names:
        grad = "IndexBackward0"
    else:
        grad = next((n for n in reversed(names) if n), "AliasBackward0")
    return ",".join(texts), tensors, counts, grad


def _refuse_on_0d(self: Tensor, key: Any) -> None:
    """PyTorch's select and slice of a bare int or slice key (its fast path, before any
    count of indices) on a 0-d tensor: their own messages."""
    if self.dim() != 0:
        return
    if isinstance(key, slice):
        if isinstance(key.step, builtins.int) and key.step <= 0:
            return  # PyTorch reads the step first: its ValueError, as any tensor's
        raise IndexError("slice() cannot be applied to a 0-dim tensor.")
    if isinstance(key, builtins.int) and not isinstance(key, builtins.bool):
        if key == 0:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python "
                             "or `tensor.item<T>()` in C++ to convert a 0-dim tensor to a "
                             "number")
        raise IndexError(f"index {key} is out of bounds for dimension 0 with size 0")


def _broadcast_to_region(value: Tensor, region: tuple) -> Tensor:
    """index_put_'s values expanded to the indexed region, with its message where they do
    not broadcast (a key of tensors; a view's copy_ says otherwise)."""
    shape = tuple(value.shape)
    fits = len(shape) <= len(region) and all(
        a in (1, b) for a, b in zip(reversed(shape), reversed(region)))
    if not fits:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(shape)} cannot be "
                           f"broadcast to indexing result of shape {list(region)}")
    return value.expand(region)


def getitem(self: Tensor, key: Any) -> Tensor:
    _refuse_on_0d(self, key)
    text, tensors, counts, grad = _index_args(key)
    if _sequence_as_tuple(key):
        key = tuple(key)
    if isinstance(key, tuple) and not tensors and grad != "AliasBackward0":
        try:
            grad = last_view(parse_key(text), tuple(self.shape))
        except (IndexError, TypeError, ValueError):
            pass  # a bad key: the op's own rule reports it
    return apply("index", self, *tensors, key=text, mask_counts=counts, torch_name=grad)


def select(self: Tensor, dim: int, index: int) -> Tensor:
    """x.select(dim, index): x[:, ..., index] (a view), with PyTorch's errors."""
    if self.dim() == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(builtins.int(dim), self.dim())
    size = self.shape[d]
    if not -size <= builtins.int(index) < size:
        raise IndexError(f"select(): index {builtins.int(index)} out of range for tensor of "
                         f"size {list(self.shape)} at dimension {d}")
    return getitem(self, (slice(None),) * d + (builtins.int(index),))


def _index_put_only(self: Tensor, text: str, tensors: list) -> bool:
    """A key of tensors besides whole slices and an ellipsis: PyTorch's applySlicing takes
    no view, so index_put_ writes x itself (IndexPutBackward0, not CopySlices)."""
    if not tensors:
        return False
    if any(t.dim() == 0 and t.dtype.name == "bool" for t in tensors):
        return False  # a 0-d mask (or True/False) is applied to x.unsqueeze(-1), a view
    items = parse_key(text)
    if any(kind in ("int", "none") for kind, *_ in items):
        return False
    it = iter(tensors)
    width = [t.dim() if t.dtype.name == "bool" else 1 for t in tensors]
    dim, used = 0, sum(width) + sum(1 for kind, *_ in items if kind == "slice")
    for kind, *rest in items:
        if kind == "ellipsis":
            dim += self.dim() - used
        elif kind == "tensor":
            t = next(it)
            dim += t.dim() if t.dtype.name == "bool" else 1
        else:
            if not whole_slice(rest[0], self.shape[dim]):
                return False
            dim += 1
    return True


def _setitem_name(self: Tensor, text: str, tensors: list, region, value) -> str:
    """PyTorch's grad_fn for x[key] = value: a key of slices that selects all of x is a
    fill (a number or 0-d tensor of another shape than x's) or a copy (any other value,
    broadcast); any other region of x is copied into a slice of it (CopySlices)."""
    whole = (not tensors and tuple(region.shape) == tuple(self.shape)
             and all(item[0] in ("slice", "ellipsis") for item in parse_key(text)))
    if not whole:
        return "IndexPutBackward0" if _index_put_only(self, text, tensors) else "CopySlices"
    # PyTorch's copy_to: a value of x's sizes is copied (a number is a 0-d tensor, so into
    # a 0-d x too), else a 0-d value fills, else the value is broadcast and copied
    if tuple(getattr(value, "shape", ())) == tuple(self.shape):
        return "CopyBackwards"
    if isinstance(value, Scalar) or (isinstance(value, TensorBase) and value.dim() == 0):
        return "FillBackward3"
    return "CopyBackwards"


def _strip_leading_ones(value: Tensor) -> Tensor:
    """PyTorch's setitem views the value without its leading size-1 dims
    (slicePrefix1sSize) before it copies: x[0] = ones(1, 2) into a row of 2, x[...] =
    ones(1, 1) into one element (then a 0-d value: a fill)."""
    shape = tuple(value.shape)
    lead = next((i for i, n in enumerate(shape) if n != 1), len(shape))
    return value.reshape(shape[lead:])


def _assignable(self: Tensor, value: Any) -> Any:
    """A value x[key] = value takes besides a tensor or a Python number: a NumPy integer
    (as an int); PyTorch's setitem refuses anything else (a list, an array, None) first."""
    if isinstance(value, np.integer):
        return builtins.int(value)
    t = type(value)
    what = t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
    raise TypeError(f"can't assign a {what} to a {self.type()}")


def setitem(self: Tensor, key: Any, value: Any, name: str | None = None) -> None:
    """x[key] = value: the indexed region takes the value, as a new node for x (`name`:
    index_put_'s, whose node is IndexPutBackward0 whatever its key)."""
    if not isinstance(value, (TensorBase, *Scalar, builtins.complex)):
        value = _assignable(self, value)
    number = isinstance(value, Scalar)
    if number:  # PyTorch converts (and checks) the number before it reads the key
        dtype = self._node.meta.dtype
        # cast to self's dtype as PyTorch does (unchecked into a half: 7e4 is inf there)
        value = scalar_as(value, "float64" if dtype == "float16" else dtype)
    _refuse_on_0d(self, key)
    _uint8_fill(key, value)
    text, tensors, counts, _ = _index_args(key)
    if not tensors and self._view is not None and overlaps(geometry(self)):
        # a tensor that repeats elements (expand) takes the value as PyTorch's does: in
        # the region its key views (x[key].copy_(value)), which may repeat none
        region = getitem(self, key)
        if number:  # a 0-d tensor of x's dtype, whose fill_ is a copy_ (PyTorch's:
            with np.errstate(over="ignore"):  # refused where the region repeats; 7e4
                value = tensor(value, dtype=self.dtype)  # into a half is inf, as PyTorch's
            region.fill_(value)
        elif not isinstance(value, TensorBase) or tuple(value.shape) == tuple(region.shape):
            region.copy_(value)
        elif value.dim() == 0:  # PyTorch's copy_to fills with a 0-d value
            region.fill_(value)
        else:
            region.copy_(_strip_leading_ones(value).expand(tuple(region.shape)))
        return
    region = apply("index", self.detach(), *tensors, key=text, mask_counts=counts)
    name = name or _setitem_name(self, text, tensors, region, value)
    if name == "FillBackward3":  # all of x: PyTorch's fill_ (of the number as a tensor),
        self._fill(tensor(value) if number else value, name)  # the old value's gradient 0
        return
    if name == "CopyBackwards":
        # (PyTorch's copy_to copies a value of x's own sizes as it is, another one
        # expanded to them: its strides count)
        self.copy_(tensor(value, dtype=self.dtype) if number else value
                   if tuple(value.shape) == tuple(self.shape) else
                   _strip_leading_ones(value).expand(tuple(self.shape)))
        return
    attrs = dict(key=text, mask_counts=counts, shape=tuple(self.shape))
    if number:
        ones_region = ones(tuple(region.shape), dtype=self.dtype)
        mask = apply("index_backward", ones_region, *tensors, **attrs) != 0
        self._check_inplace(reads=(value,))
        _indexed(self, mask, apply("where", mask, value, self, torch_name=name))
        return
    if not isinstance(value, TensorBase):
        value = tensor(value, dtype=self.dtype)
    value = _strip_leading_ones(value).to(self.dtype)
    value = (_broadcast_to_region(value, tuple(region.shape)) if tensors
             else value.expand(tuple(region.shape)))
    mask = apply("index_backward", ones(tuple(region.shape), dtype=self.dtype),
                 *tensors, **attrs) != 0
    # placed, not added: duplicates keep one written value and a -0.0 stays -0.0
    placed = apply("index_backward", value, *tensors, **attrs, accumulate=False)
    self._check_inplace(reads=(value,))
    _indexed(self, mask, apply("where", mask, placed, self, torch_name=name))


def _indexed(self: Tensor, mask: Tensor, out: Tensor) -> None:
    """self takes `out`, its elements where `mask` is set written by an index. Into a
    tensor that repeats elements (expand) PyTorch's index_put_ warns and writes each
    indexed element's memory: each memory location takes the last indexed element there
    (any one where none is)."""
    if self._view is None or not overlaps(geometry(self)):
        self._assign(out)
        return
    warnings.warn(EXPANDED_INDEX_PUT, UserWarning, stacklevel=3)
    _views.PICK[0] = mask.detach()._value().ravel()
    if self._view.root is None or self._view.root() is None:  # its own memory repeats
        where = _views._strides.positions(geometry(self)).ravel()
        top, mine = _views._picked(where, _views.PICK[0])
        chosen = np.zeros(builtins.int(top.max(initial=-1)) + 1, dtype=np.int64)
        chosen[top] = mine
        out = out.reshape(-1)[tensor(chosen[where])].reshape(tuple(self.shape))
    try:
        self._assign(out)
    finally:
        _views.PICK[0] = None


EXPANDED_INDEX_PUT = (
    "Use of index_put_ on expanded tensors is deprecated. Please clone() the tensor before "
    "performing this operation. This also applies to advanced indexing e.g. "
    "tensor[indices] = tensor")


def index_put_(self: Tensor, *args, **kwargs) -> Tensor:
    """x.index_put_(indices, values): x[indices] = values, or with accumulate the values
    added at the indices (repeated ones each adding), as PyTorch's IndexPutBackward0."""
    key, values, accumulate = _index_put.parse("index_put_", 0, args, kwargs)
    return _index_put_checked(self, key, values, accumulate)


def _index_put_checked(self: Tensor, key: tuple, values: Tensor, accumulate: bool) -> Tensor:
    fill = _index_put.check(self, key, values, accumulate)
    if fill:  # a masked fill of one value
        values = values.reshape(())
    if any(t.dtype.name == "uint8" for t in key):  # warned here once, not by each use
        warn_user(UINT8_INDEX)
        key = tuple(t.bool() if t.dtype.name == "uint8" else t for t in key)
    text, tensors, counts, _ = _index_args(key)
    region = apply("index", self.detach(), *tensors, key=text, mask_counts=counts)
    _broadcast_to_region(values, tuple(region.shape))  # as given: no leading 1s stripped
    if not fill:
        _index_put.check_dtype(self, values)
    if not accumulate:
        setitem(self, key, values, "IndexPutBackward0")
        return self
    values = _broadcast_to_region(_strip_leading_ones(values).to(self.dtype),
                                  tuple(region.shape))
    placed = apply("index_backward", values, *tensors, key=text, mask_counts=counts,
                   shape=tuple(self.shape))
    self._check_inplace(reads=(values,))
    if self._view is not None and overlaps(geometry(self)):
        # into a tensor that repeats elements (expand): each indexed element adds into its
        # memory location, so each location takes all that its elements are given
        placed = _per_location(self, placed)
        _indexed(self, ones(tuple(self.shape), dtype="bool"),
                 apply("add", self, placed, torch_name="IndexPutBackward0"))
        return self
    return self._assign(apply("add", self, placed, torch_name="IndexPutBackward0"))


def _per_location(self: Tensor, placed: Tensor) -> Tensor:
    """For each element of `self`, the sum of `placed` over the elements that share its
    memory location."""
    where = _views._strides.positions(geometry(self)).ravel()
    _, group = np.unique(where, return_inverse=True)
    size = builtins.int(group.max(initial=-1)) + 1
    group = tensor(group.astype(np.int64))
    flat = placed.reshape(-1)
    total = apply("scatter_add", flat.new_zeros((size,)), group, flat, dim=0)
    return total[group].reshape(tuple(self.shape))


def index_put(self: Tensor, *args, **kwargs) -> Tensor:
    key, values, accumulate = _index_put.parse("index_put", 0, args, kwargs)
    return _index_put_checked(self.clone(), key, values, accumulate)


def _index_put_function(name: str, in_place: bool):
    """torch.index_put(input, indices, values, accumulate=False) and torch.index_put_."""
    def function(*args, **kwargs) -> Tensor:
        if not args and "input" not in kwargs:
            _index_put.missing(name, ("input", "indices", "values"), (), kwargs, ())
        input = args[0] if args else kwargs.pop("input")
        key, values, accumulate = _index_put.parse(name, 1, args[1:], kwargs, input)
        return _index_put_checked(input if in_place else input.clone(), key, values,
                                  accumulate)
    function.__name__ = name
    return function


def _where_method(self: Tensor, condition: Tensor, other) -> Tensor:
    return apply("where", condition, self, other)


def masked_fill(self: Tensor, mask: Tensor, value) -> Tensor:
    # The fill takes self's dtype, as in PyTorch: 1.5 into an int64 tensor is 1.
    if isinstance(value, TensorBase):
        value = value.to(self.dtype)
    else:
        value = scalar_as(value, self._node.meta.dtype)
    return apply("where", mask, value, self, torch_name="MaskedFillBackward0")


def _masked_fill_(self: Tensor, mask: Tensor, value) -> Tensor:
    self._check_inplace(reads=(value,))
    return self._assign(masked_fill(self, mask, value))


def _in_place_name(op: str, attrs: dict) -> str:
    """PyTorch's nodes of the in-place overloads: TransposeBackward1, UnsqueezeBackward1,
    SqueezeBackward3 (no dim), 4 (one dim), 5 (several)."""
    if op != "squeeze":
        return f"{op.capitalize()}Backward1"
    dim = attrs.get("dim")
    return f"SqueezeBackward{3 if dim is None else 4 if isinstance(dim, builtins.int) else 5}"


def _view_in_place(self: Tensor, name: str, args: tuple, kwargs: dict) -> Tensor:
    """transpose_/squeeze_/unsqueeze_: self takes the view's value and its geometry."""
    self._check_inplace()
    spec = TABLE[name]
    operands, attrs = bind(name, spec, (self, *args), kwargs)
    if name == "squeeze" and isinstance(attrs.get("dim"), tuple):
        _once(self, attrs["dim"])
    out = apply(spec.op, *operands, torch_name=_in_place_name(spec.op, attrs), **attrs)
    return self._assign(out, same_shape=False)


class ShapeMethods:
    """The shape methods and indexing of Tensor (many the same functions as
    remotegrad.<name>)."""

    __slots__ = ()
    where = _where_method
    flatten = flatten
    masked_fill = masked_fill
    masked_fill_ = _masked_fill_
    permute = permute
    repeat = repeat
    flip = flip
    squeeze = squeeze
    t = _t
    T = property(_T)
    mT = property(_mT)
    mH = property(lambda self: _mT(self, "mH"))  # real dtypes only: mH is mT
    broadcast_to = _broadcast_to
    split = split
    chunk = chunk
    unbind = unbind
    __getitem__ = getitem
    select = select
    __setitem__ = setitem
    index_put_ = index_put_
    index_put = index_put

    def t_(self) -> Tensor:
        return self._assign(_t(self, "TBackward1"), same_shape=False)

    def transpose_(self, *args, **kwargs) -> Tensor:
        return _view_in_place(self, "transpose", args, kwargs)

    def squeeze_(self, *args, **kwargs) -> Tensor:
        return _view_in_place(self, "squeeze", args, kwargs)

    def unsqueeze_(self, *args, **kwargs) -> Tensor:
        return _view_in_place(self, "unsqueeze", args, kwargs)

    def __iter__(self):
        if self.dim() == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))


def functions() -> dict[str, Any]:
    """The module-level shape functions whose catalog op is available."""
    table = {"cat": (cat, "cat"), "concat": (cat, "cat"), "concatenate": (cat, "cat"),
             "stack": (stack, "stack"), "einsum": (einsum, "einsum"),
             "where": (where, "where"), "permute": (permute, "permute"),
             "split": (split, "split"), "chunk": (chunk, "chunk"),
             "unbind": (unbind, "index"), "t": (_t, "transpose"),
             "squeeze": (squeeze, "squeeze"), "flatten": (flatten, "flatten"),
             "masked_fill": (masked_fill, "where"), "select": (select, "index"),
             "flip": (lambda input, dims: flip(input, dims), "flip"),
             "index_put": (_index_put_function("index_put", False), "index_backward"),
             "index_put_": (_index_put_function("index_put_", True), "index_backward")}
    return {k: fn for k, (fn, op) in table.items() if op in catalog.CATALOG}
