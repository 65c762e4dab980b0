"""Indexing: `index` (PyTorch's `x[key]`), index_select, gather, scatter_add, index_add.

`index` encodes the key declaratively in the `key` attribute, a comma-separated string of
items: an integer (`-1`), a slice `start:stop:step` (empty parts are None, so `::2`),
`None`, `...`, or `T` for the next tensor input (int64/int32 indices or a bool mask).
Example: `x[1:, None, idx, ..., mask]` is `index(x, idx, mask, key="1:,None,T,...,T")`.

A bool mask's output length depends on its data, while every shape must be known when
the graph is built: the node carries `mask_counts`, the number of true elements of each
mask input in order (the client knows the mask's value, or fetches it first). The forward
checks the count against the data and fails if they disagree.

PyTorch's semantics (not numpy's) are kept: ints, slices and None apply first as a view;
tensor indices then index the remaining dims; their broadcast shape replaces the indexed
dims in place when those are adjacent, else goes first.
"""

from __future__ import annotations

from ._checks import CheckedRuntimeError, indices_within
from ._special import scatter_add
from . import _batching as _batch
from ._registry import REQUIRED, define
from ._samples import F, I, S, V
from ._types import INTEGRAL, Meta, OpError, broadcast_shapes, check_dim, numel

_INDEX_DTYPES = INTEGRAL | {"bool"}


def parse_key(key: str) -> list[tuple]:
    items = []
    for raw in key.split(",") if key else []:
        t = raw.strip()
        if t == "None":
            items.append(("none",))
        elif t == "...":
            items.append(("ellipsis",))
        elif t == "T":
            items.append(("tensor",))
        elif ":" in t:
            parts = t.split(":")
            if len(parts) > 3:
                raise OpError(f"index: bad slice {t!r}")
            vals = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
            if vals[2] == 0:
                raise OpError("slice step cannot be zero")
            if vals[2] is not None and vals[2] < 0:
                raise OpError("step must be greater than zero")
            items.append(("slice", slice(*vals)))
        else:
            try:
                items.append(("int", int(t)))
            except ValueError:
                raise OpError(f"index: bad key item {t!r}") from None
    if sum(1 for i in items if i[0] == "ellipsis") > 1:
        raise OpError("an index can only have a single ellipsis ('...')")
    return items


def plan_index(shape, key, tensor_metas, mask_counts):
    """(basic numpy key, advanced key or None, output shape) for PyTorch's x[key]."""
    items = parse_key(key)
    ntensors = sum(1 for i in items if i[0] == "tensor")
    if ntensors != len(tensor_metas):
        raise OpError(f"index: key has {ntensors} tensor item(s), got {len(tensor_metas)} "
                      "tensor input(s)")
    tdims = [len(m.shape) if m.dtype == "bool" else 1 for m in tensor_metas]
    t_iter = iter(range(len(tensor_metas)))
    used = sum(1 for i in items if i[0] in ("int", "slice")) + sum(tdims)
    if used > len(shape):
        raise OpError(f"too many indices for tensor of dimension {len(shape)}")
    basic, out_shape, adv = [], [], []  # adv: (position in the basic result, tensor no.)
    dim = 0
    for it in items:
        if it[0] == "ellipsis":
            for _ in range(len(shape) - used):
                basic.append(slice(None))
                out_shape.append(shape[dim])
                dim += 1
        elif it[0] == "none":
            basic.append(None)
            out_shape.append(1)
        elif it[0] == "int":
            size = shape[dim]
            if not -size <= it[1] < size:
                raise OpError(f"index {it[1]} is out of bounds for dimension {dim} with size "
                              f"{size}")
            basic.append(it[1])
            dim += 1
        elif it[0] == "slice":
            basic.append(it[1])
            out_shape.append(len(range(*it[1].indices(shape[dim]))))
            dim += 1
        else:
            k = next(t_iter)
            m = tensor_metas[k]
            if m.dtype not in _INDEX_DTYPES:
                raise OpError("tensors used as indices must be long, int, byte or bool tensors")
            if m.dtype == "bool" and m.shape != tuple(shape[dim:dim + len(m.shape)]):
                raise OpError(f"The shape of the mask {list(m.shape)} at index {dim} does not "
                              f"match the shape of the indexed tensor {list(shape)}")
            adv.append((len(out_shape), k, tdims[k]))
            for _ in range(tdims[k]):
                basic.append(slice(None))
                out_shape.append(shape[dim])
                dim += 1
    out_shape += list(shape[dim:])
    if not adv:
        return tuple(basic), None, tuple(out_shape)
    return _advanced(tuple(basic), adv, out_shape, tensor_metas, mask_counts)


def _advanced(basic, adv, out_shape, tensor_metas, mask_counts):
    masks = [k for k, m in enumerate(tensor_metas) if m.dtype == "bool"]
    if len(mask_counts) != len(masks):
        raise OpError(f"index: {len(masks)} bool mask(s) need as many mask_counts, got "
                      f"{len(mask_counts)}")
    bshape: tuple[int, ...] = ()
    for _, k, _nd in adv:
        m = tensor_metas[k]
        s = (mask_counts[masks.index(k)],) if m.dtype == "bool" else m.shape
        try:
            bshape = broadcast_shapes(bshape, s)
        except OpError:
            raise OpError("shape mismatch: indexing tensors could not be broadcast together "
                          f"with shapes {[list(tensor_metas[a[1]].shape) for a in adv]}") from None
    first, last = adv[0][0], adv[-1][0] + adv[-1][2]
    adjacent = all(a[0] + a[2] == b[0] for a, b in zip(adv, adv[1:]))
    if adjacent:
        shape = tuple(out_shape[:first]) + bshape + tuple(out_shape[last:])
    else:
        taken = {p + j for p, _, nd in adv for j in range(nd)}
        shape = bshape + tuple(s for i, s in enumerate(out_shape) if i not in taken)
    positions = tuple((p, k) for p, k, _ in adv)
    return basic, positions, shape


def _bounds_message(k, size):
    return lambda v: f"index {v} is out of bounds for dimension {k} with size {size}"


def _check_advanced(xp, shape, positions, tensors):
    """Each integer index tensor within its dim of `shape` (the basic result's), counting
    from the end when negative; PyTorch numbers the dims in its message by the index
    tensors (the k-th one: dimension k). numpy would raise too, but a device wraps."""
    for k, (p, t) in enumerate(positions):
        arr = tensors[t]
        if arr.dtype != bool:
            indices_within(xp, arr, shape[p], IndexError, _bounds_message(k, shape[p]),
                           negative=True)


def _advanced_key(ndim, positions, tensors):
    """The numpy key for the index tensors at their positions in the basic result. A 0-d
    mask takes no dim (x[x > 0] of a 0-d x), so it is placed even where no dim is left."""
    key: list = []
    pending = list(positions)  # (position, tensor number), in the key's order
    i = 0
    while pending or i < ndim:
        if pending and pending[0][0] <= i:
            t = tensors[pending.pop(0)[1]]
            key.append(t)
            i += t.ndim if t.dtype == bool else 1
        elif i < ndim:
            key.append(slice(None))
            i += 1
        else:  # pragma: no cover - plan_index placed every tensor within the dims
            break
    return tuple(key)


def _infer_index(metas, key, mask_counts):
    _, _, shape = plan_index(metas[0].shape, key, metas[1:], mask_counts)
    return Meta(shape, metas[0].dtype)


def _metas_of(arrays):
    return [Meta(tuple(t.shape), t.dtype.name) for t in arrays]


def _check_counts(tensors, mask_counts):
    masks = [t for t in tensors if t.dtype == bool]
    for m, c in zip(masks, mask_counts):
        n = int(m.sum())
        if n != c:
            raise OpError(f"index: bool mask has {n} true element(s), the graph says {c}")


def _index_forward(xp, a, *tensors, key, mask_counts):
    _check_counts(tensors, mask_counts)
    basic, positions, _ = plan_index(a.shape, key, _metas_of(tensors), mask_counts)
    out = a[basic]
    if positions is not None:
        _check_advanced(xp, out.shape, positions, tensors)
        out = out[_advanced_key(out.ndim, positions, tensors)]
    return out


def _index_backward_forward(xp, g, *tensors, key, mask_counts, shape, accumulate=True):
    """g placed at x[key] in zeros of x's shape. accumulate: repeated indices add (the
    gradient of x[key]); else they overwrite, one of the written values kept (setitem's
    placement: x[idx] = v is index_put_ with accumulate=False, which neither adds nor
    turns a written -0.0 into 0.0)."""
    basic, positions, _ = plan_index(shape, key, _metas_of(tensors), mask_counts)
    out = xp.zeros(shape, dtype=g.dtype)
    if positions is None:
        out[basic] = g   # (out[basic] itself is a scalar, not a view, when ints take all dims)
        return out
    view = out[basic] if basic else out  # out[()] of a 0-d array is a scalar, not a view
    _check_advanced(xp, view.shape, positions, tensors)
    adv = _advanced_key(view.ndim, positions, tensors)
    if accumulate:  # repeated indices accumulate, as in PyTorch's index backward
        scatter_add(xp, view, adv, g)
    else:
        view[adv] = g
    return out


def _infer_index_backward(metas, key, mask_counts, shape, accumulate=True):
    _, _, out = plan_index(tuple(shape), key, metas[1:], mask_counts)
    if out != metas[0].shape:
        raise OpError(f"index_backward: gradient of shape {list(metas[0].shape)} does not match "
                      f"the indexed shape {list(out)}")
    return Meta(tuple(shape), metas[0].dtype)


def whole_slice(sl: slice, size: int) -> bool:
    """A slice that keeps all of a dim of `size` (PyTorch's applySlicing skips it)."""
    return sl.start in (None, 0) and sl.step in (None, 1) and (sl.stop is None or sl.stop >= size)


def _alias(key: str, shape) -> bool:
    """A key of several items (or an ellipsis) that selects every element: PyTorch's
    applySlicing applies nothing, the result is an alias, and its gradient passes as it is.
    (A lone whole slice, x[:], is a slice in PyTorch.)"""
    if "," not in key and key != "...":
        return False
    items = parse_key(key)
    if any(kind not in ("slice", "ellipsis") for kind, *_ in items):
        return False
    slices = [rest[0] for kind, *rest in items if kind == "slice"]
    dim, seen = 0, 0
    for kind, *rest in items:
        if kind == "ellipsis":
            dim = len(shape) - (len(slices) - seen)
            continue
        seen += 1
        if dim >= len(shape) or not whole_slice(rest[0], shape[dim]):
            return False
        dim += 1
    return True


def _index_rule(g, x, *t, out, index, key, mask_counts):
    if index:
        return None
    if not t and _alias(key, x.shape):
        return g
    return g.index_backward(*t, key=key, mask_counts=mask_counts, shape=x.shape)


_KEY = {"key": ("str", REQUIRED), "mask_counts": ("ints", ())}
define("index",
       batch=_batch.index_key(),
       nin=-1, infer=_infer_index, forward=_index_forward, variadic_rule=_index_rule,
       attrs=dict(_KEY),
       samples=(S(F(4, 3), key="1"), S(F(4, 3), key="-1,::2"), S(F(4, 3), key="1,2"),
                S(F(4, 3, 2), key="None,1:,...,0"),
                S(F(5, 3), I((4,), 5), key="T", grad=(0,)),
                S(F(5, 3), I((2, 3), 5, low=-5), key="T,-1", grad=(0,)),
                S(F(2, 3, 4), I((2,), 3), key="0,:,T", grad=(0,)),
                S(F(2, 3, 4), I((2,), 2), I((2,), 4), key="T,:,T", grad=(0,)),
                S(F(3, 4), V([[True, False, True, True], [False] * 4, [True] * 4], "mask"),
                  key="T", mask_counts=(7,), grad=(0,)),
                S(F(3, 4), V([True, False, True], "mask"), key="T,1:", mask_counts=(2,),
                  grad=(0,)),
                S(F(), key="None"), S(F(0, 3), key=":,1"),
                # a 0-d mask of a 0-d tensor (x[x > 0]): one element or none
                S(F(), V(True, "mask"), key="T", mask_counts=(1,), grad=(0,)),
                S(F(), V(False, "mask"), key="T", mask_counts=(0,), grad=(0,))))
define("index_backward",
       batch=_batch.index_key(prefix_shape=True),
       nin=-1, infer=_infer_index_backward, forward=_index_backward_forward,
       # without accumulate too, each placed value's gradient is the seed at its index
       # (a duplicate's as well), as PyTorch's IndexPutBackward0 for values
       variadic_rule=lambda h, g, *t, out, index, key, mask_counts, shape, accumulate:
           None if index else h.index(*t, key=key, mask_counts=mask_counts),
       attrs={**_KEY, "shape": ("ints", REQUIRED), "accumulate": ("bool", True)},
       samples=(S(F(2, 3), key="1:3", shape=(4, 3)), S(F(), key="1,-1", shape=(4, 3)),
                S(F(4), I((4,), 3), key="T", shape=(3,), grad=(0,))))


# --- index_select / index_add / gather / scatter_add ----------------------------------------
def _index_tensor(m: Meta, name: str):
    if m.dtype not in INTEGRAL:
        raise OpError(f"{name}(): Expected dtype int32/int64 for index")


def _infer_index_select(metas, dim):
    x, idx = metas
    _index_tensor(idx, "index_select")
    if len(idx.shape) > 1:
        raise OpError("index_select(): Index is supposed to be a vector")
    if not x.shape:
        n = numel(idx.shape)
        if n != 1:
            raise OpError(f"index_select(): Index to scalar can have only 1 value, got {n} "
                          "value(s)")
        return Meta((), x.dtype)
    d = check_dim(dim, len(x.shape))
    n = idx.shape[0] if idx.shape else 1
    if x.shape[d] == 0 and n and len(x.shape) > 1:  # PyTorch's check of a matrix's dim
        raise OpError("index_select(): self indexing axis dim should be positive")
    return Meta(x.shape[:d] + (n,) + x.shape[d + 1:], x.dtype)


def _index_select_forward(xp, a, idx, dim):
    size = a.shape[check_dim(dim, a.ndim)] if a.ndim else 1
    indices_within(xp, idx, size, IndexError, "index out of range in self")
    if not a.ndim:
        return a.copy()
    return xp.take(a, idx.reshape(-1), axis=check_dim(dim, a.ndim))


def _infer_index_add(metas, dim, alpha):
    x, idx, src = metas
    _index_tensor(idx, "index_add")
    d = check_dim(dim, len(x.shape))
    want = x.shape[:d] + ((idx.shape[0] if idx.shape else 1),) + x.shape[d + 1:] if x.shape else ()
    if src.shape != want:
        raise OpError(f"index_add_(): Source/destination tensor must have same slice shapes. "
                      f"Destination slice shape: {list(x.shape)} at dimension {d} and source "
                      f"slice shape: {list(src.shape)} at dimension 0.")
    return Meta(x.shape, x.dtype)


def _index_add_forward(xp, a, idx, src, dim, alpha):
    d = check_dim(dim, a.ndim) if a.ndim else 0
    size = a.shape[d] if a.ndim else 1
    indices_within(xp, idx, size, CheckedRuntimeError, _bounds_message(d, size))
    out = a.copy()
    if not a.ndim:
        return out + src * alpha
    key = (slice(None),) * check_dim(dim, a.ndim) + (idx.reshape(-1),)
    scatter_add(xp, out, key, src * alpha if alpha != 1 else src)
    return out


define("index_select",
       batch=_batch.only(0, then=_batch.dims_shift("dim")),
       nin=2, infer=_infer_index_select, forward=_index_select_forward,
       vjp=(lambda g, x, i, out, dim: x.full_like(0.0).index_add(i, g, dim=dim), None),
       attrs={"dim": ("int", REQUIRED)},
       samples=(S(F(5, 3), I((4,), 5), dim=0), S(F(2, 4), I((3,), 4), dim=-1),
                S(F(3, 2), I((0,), 3), dim=0)))
define("index_add",
       batch=_batch.only(0, 2, then=_batch.all_batched(_batch.dims_shift("dim"),
                                                          which=(0, 2))),
       nin=3, infer=_infer_index_add, forward=_index_add_forward,
       vjp=(lambda g, x, i, s, out, dim, alpha: g, None,
            lambda g, x, i, s, out, dim, alpha: g.index_select(i, dim=dim) * alpha),
       attrs={"dim": ("int", REQUIRED), "alpha": ("scalar", 1)},
       samples=(S(F(5, 3), I((4,), 5), F(4, 3), dim=0, grad=(0, 2)),
                S(F(2, 4), I((3,), 4), F(2, 3), dim=1, alpha=2.0, grad=(0, 2))))


def _infer_gather(metas, dim):
    x, idx = metas
    _index_tensor(idx, "gather")
    if len(idx.shape) != len(x.shape):
        raise OpError("Index tensor must have the same number of dimensions as input tensor")
    d = check_dim(dim, len(x.shape)) if x.shape else 0
    for i, (a, b) in enumerate(zip(idx.shape, x.shape)):
        if i != d and a > b:
            raise OpError(f"Size does not match at dimension {i} expected index {list(idx.shape)}"
                          f" to be no larger than self {list(x.shape)} apart from dimension {d}")
    return Meta(idx.shape, x.dtype)


def _fit(a, idx, d):
    """`a` cut to the index's extent in every dim but `d` (PyTorch allows a smaller index)."""
    return a[tuple(slice(None) if i == d else slice(0, n) for i, n in enumerate(idx.shape))]


def _gather_checked(xp, a, idx, dim) -> int:
    """gather's and scatter_add's dim, their indices checked against it."""
    d = check_dim(dim, a.ndim) if a.ndim else 0
    size = a.shape[d] if a.ndim else 1
    indices_within(xp, idx, size, CheckedRuntimeError, _bounds_message(d, size))
    return d


def _gather_forward(xp, a, idx, dim):
    d = _gather_checked(xp, a, idx, dim)
    if not a.ndim:
        return a.copy()
    return xp.take_along_axis(_fit(a, idx, d), idx, axis=d)


def _grid_key(xp, idx, d):
    return tuple(idx if i == d else open_grid(xp, idx.shape, i) for i in range(idx.ndim))


def open_grid(xp, shape, axis):
    """arange(shape[axis]) shaped to broadcast along `axis` (numpy's sparse indices,
    which CuPy lacks)."""
    return xp.arange(shape[axis]).reshape(tuple(-1 if i == axis else 1 for i in range(len(shape))))


def _scatter_add_forward(xp, a, idx, src, dim):
    d = _gather_checked(xp, a, idx, dim)
    out = a.copy()
    if not a.ndim:
        return out + src
    scatter_add(xp, out, _grid_key(xp, idx, d), src[tuple(slice(0, n) for n in idx.shape)])
    return out


def _infer_scatter_add(metas, dim):
    x, idx, src = metas
    _infer_gather([x, idx], dim)
    if len(src.shape) != len(idx.shape) or any(a > b for a, b in zip(idx.shape, src.shape)):
        raise OpError(f"Expected index {list(idx.shape)} to be no larger than src "
                      f"{list(src.shape)} in every dimension")
    return Meta(x.shape, x.dtype)


def _scatter_src_vjp(g, x, idx, src, out, dim):
    picked = g.gather(idx, dim=dim)
    if idx.shape == src.shape:
        return picked
    pad = tuple(v for a, b in zip(reversed(idx.shape), reversed(src.shape)) for v in (0, b - a))
    return picked.pad(pad=pad)


define("gather",
       batch=_batch.all_batched(_batch.dims_shift('dim')),
       nin=2, infer=_infer_gather, forward=_gather_forward,
       vjp=(lambda g, x, i, out, dim: x.full_like(0.0).scatter_add(i, g, dim=dim), None),
       attrs={"dim": ("int", REQUIRED)},
       samples=(S(F(3, 4), I((3, 2), 4), dim=1), S(F(3, 4), I((5, 4), 3), dim=0),
                S(F(3, 4), I((2, 3), 3), dim=0)))
define("scatter_add",
       batch=_batch.all_batched(_batch.dims_shift('dim')),
       nin=3, infer=_infer_scatter_add, forward=_scatter_add_forward,
       vjp=(lambda g, x, i, s, out, dim: g, None, _scatter_src_vjp),
       attrs={"dim": ("int", REQUIRED)},
       samples=(S(F(3, 4), I((3, 2), 4), F(3, 2), dim=1, grad=(0, 2)),
                S(F(3, 4), I((2, 3), 3), F(2, 3), dim=0, grad=(0, 2))))


# --- scatter: writes src's values (or one value) at the index's positions along dim ------
def _infer_scatter(metas, dim, value):
    """PyTorch's checks: 0-d tensors count as 1-d; the index no larger than self apart from
    dim, and no larger than src anywhere."""
    x, idx, src = metas[0], metas[1], (metas[2] if len(metas) > 2 else None)
    if len(metas) not in (2, 3):
        raise OpError(f"scatter: expected 2 or 3 inputs, got {len(metas)}")
    _index_tensor(idx, "scatter")
    if src is not None and src.dtype != x.dtype:
        raise OpError("scatter(): Expected self.dtype to be equal to src.dtype")
    ndim = max(len(x.shape), 1)
    d = check_dim(dim, ndim)
    if max(len(idx.shape), 1) != ndim:
        raise OpError("Index tensor must have the same number of dimensions as self tensor")
    if src is not None and max(len(src.shape), 1) != ndim:
        raise OpError("Index tensor must have the same number of dimensions as src tensor")
    ishape, xshape = idx.shape or (1,), x.shape or (1,)
    over_self = any(i != d and a > b for i, (a, b) in enumerate(zip(ishape, xshape)))
    over_src = src is not None and any(a > b for a, b in zip(ishape, src.shape or (1,)))
    if over_self or over_src:
        tail = f" and to be no larger size than src {list(src.shape)}" if src is not None else ""
        raise OpError(f"Expected index {list(idx.shape)} to be no larger than self "
                      f"{list(x.shape)} apart from dimension {d}{tail}")
    return Meta(x.shape, x.dtype)


def _scatter_forward(xp, a, idx, *src, dim, value):
    d = _gather_checked(xp, a, idx, dim)
    out = a.copy()
    if not idx.size:
        return out
    if not a.ndim:  # a 0-d self: the one position is written
        return xp.asarray(src[0] if src else value, dtype=a.dtype).reshape(())
    idx = idx.reshape(idx.shape or (1,))
    # duplicate positions: the last write wins (PyTorch leaves it unspecified)
    if src:
        values = src[0].reshape(src[0].shape or (1,))[tuple(slice(0, n) for n in idx.shape)]
    out[_grid_key(xp, idx, d)] = values if src else value
    return out


def _scatter_vjp(g, x, idx, *src, out, index, dim, value):
    """self's gradient: g with the written positions zeroed; src's: g at those positions
    (zero where src extends past the index); the index has none."""
    if index == 0:
        return g.scatter(idx, dim=dim, value=0.0)
    if index == 1:
        return None
    return _scatter_src_vjp(g, x, idx, src[0], out, dim)


define("scatter",
       batch=_batch.all_batched(_batch.dims_shift('dim')),
       nin=-1, infer=_infer_scatter, forward=_scatter_forward,
       variadic_rule=_scatter_vjp, attrs={"dim": ("int", REQUIRED), "value": ("scalar", 0)},
       samples=(S(F(3, 4), V([[0, 2], [3, 1], [1, 0]]), F(3, 2), dim=1, grad=(0, 2)),
                S(F(3, 4), V([[0, 1, 2], [2, 0, 1]]), F(2, 3), dim=0, grad=(0, 2)),
                # src larger than the index: PyTorch's backward fails for src's
                # gradient (its gathered g has the index's shape); ours pads it
                S(F(4, 3), V([[1, 0], [3, 2]]), F(3, 3), dim=0, grad=(0,)),
                S(F(3, 4), V([[0, 2], [3, 1]]), dim=1, value=1.5, grad=(0,)),
                S(F(5), V([4, 0, 2]), dim=0, value=-2.0, grad=(0,))))
