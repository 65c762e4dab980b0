"""Shape ops: views and copies that move elements around without arithmetic.

Every derivative here is another shape op (transpose ↔ transpose, narrow ↔ pad, cat →
narrow, repeat → reshape+sum), so all of them are linear and twice differentiable.
Ops that return several tensors in PyTorch (split, chunk) take an `index` attribute and
return that one piece (see the catalog docstring).
"""

from __future__ import annotations

from ._special import scatter_add
from . import _batching as _batch
from ._registry import REQUIRED, define
from ._samples import F, S
from ._types import Meta, OpError, check_dim, expand_shape, normalize_dims, numel


def _meta(metas, shape):
    return Meta(tuple(shape), metas[0].dtype)


# --- flatten / squeeze / unsqueeze / transpose / permute ----------------------------------
def _flatten_shape(shape, start_dim, end_dim):
    if not shape:
        return (1,)
    s, e = check_dim(start_dim, len(shape)), check_dim(end_dim, len(shape))
    if s > e:
        raise OpError("flatten() has invalid args: start_dim cannot come after end_dim")
    return shape[:s] + (numel(shape[s:e + 1]),) + shape[e + 1:]


define("flatten", batch=_batch.flatten,
       infer=lambda m, start_dim, end_dim:
           _meta(m, _flatten_shape(m[0].shape, start_dim, end_dim)),
       forward=lambda xp, a, start_dim, end_dim:
           a.reshape(_flatten_shape(a.shape, start_dim, end_dim)),
       vjp=lambda g, x, out, **_: g.reshape(shape=x.shape),
       attrs={"start_dim": ("int", 0), "end_dim": ("int", -1)},
       samples=(S(F(2, 3, 4)), S(F(2, 3, 4), start_dim=1), S(F()),
                S(F(2, 0, 3), start_dim=0, end_dim=1)))


def _squeeze_shape(shape, dim):
    dims = normalize_dims(dim, len(shape)) if shape else ()
    return tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))


def _squeeze_vjp(g, x, dim):
    """PyTorch's unsqueeze_to: g unsqueezed at each dim the squeeze removed, in order (g
    itself where it removed none)."""
    dims = normalize_dims(dim, len(x.shape)) if x.shape else ()
    for i, size in enumerate(x.shape):
        if i in dims and size == 1:
            g = g.unsqueeze(dim=i)
    return g


define("squeeze",
       batch=_batch.squeeze,
       infer=lambda m, dim: _meta(m, _squeeze_shape(m[0].shape, dim)),
       forward=lambda xp, a, dim: a.reshape(_squeeze_shape(a.shape, dim)),
       vjp=lambda g, x, out, dim: _squeeze_vjp(g, x, dim), attrs={"dim": ("dims", None)},
       samples=(S(F(2, 1, 3, 1)), S(F(2, 1, 3), dim=1), S(F(2, 1, 3), dim=0), S(F()),
                S(F(1, 0, 1), dim=(0, 2))))


def _unsqueeze_shape(shape, dim):
    d = check_dim(dim, len(shape) + 1)
    return shape[:d] + (1,) + shape[d:]


# PyTorch's rule squeezes the dim (SqueezeBackward1), not a reshape
define("unsqueeze",
       batch=_batch.dims_shift('dim', extra=1),
       infer=lambda m, dim: _meta(m, _unsqueeze_shape(m[0].shape, dim)),
       forward=lambda xp, a, dim: a.reshape(_unsqueeze_shape(a.shape, dim)),
       vjp=lambda g, x, out, dim: g.squeeze(dim=dim), attrs={"dim": ("int", REQUIRED)},
       samples=(S(F(2, 3), dim=1), S(F(2, 3), dim=-1), S(F(), dim=0), S(F(0, 2), dim=0)))


def _perm_for_transpose(ndim, dim0, dim1):
    if ndim == 0:
        check_dim(dim0, 0), check_dim(dim1, 0)
        return ()
    d0, d1 = check_dim(dim0, ndim), check_dim(dim1, ndim)
    perm = list(range(ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return tuple(perm)


def _infer_transpose(m, dim0, dim1):
    perm = _perm_for_transpose(len(m[0].shape), dim0, dim1)
    return _meta(m, tuple(m[0].shape[p] for p in perm))


define("transpose", batch=_batch.dims_shift('dim0', 'dim1'), infer=_infer_transpose,
       forward=lambda xp, a, dim0, dim1: a.transpose(_perm_for_transpose(a.ndim, dim0, dim1)),
       vjp=lambda g, x, out, dim0, dim1: g.transpose(dim0=dim0, dim1=dim1),
       attrs={"dim0": ("int", REQUIRED), "dim1": ("int", REQUIRED)},
       samples=(S(F(2, 3), dim0=0, dim1=1), S(F(2, 3, 4), dim0=-1, dim1=0),
                S(F(), dim0=0, dim1=-1), S(F(0, 3), dim0=1, dim1=0)))


def _check_perm(dims, ndim):
    if len(dims) != ndim:
        raise OpError("permute(sparse_coo): number of dimensions in the tensor input does not "
                      "match the length of the desired ordering of dimensions i.e. input.dim() = "
                      f"{ndim} is not equal to len(dims) = {len(dims)}")
    perm = tuple(check_dim(d, ndim) for d in dims)
    if len(set(perm)) != ndim:
        raise OpError("permute(): duplicate dims are not allowed.")
    return perm


def _permute_vjp(g, x, out, dims):
    perm = _check_perm(dims, x.ndim)
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return g.permute(dims=tuple(inverse))


def _permute_batch(site):
    """permute(dims): the batch dim stays first, the slice's dims move past it."""
    r = site.rank()
    return dict(site.attrs, dims=(0,) + tuple(d % r + 1 for d in site.attrs["dims"])) if r \
        else dict(site.attrs, dims=(0,))


define("permute", batch=_permute_batch,
       infer=lambda m, dims: _meta(m, tuple(m[0].shape[p]
                                            for p in _check_perm(dims, len(m[0].shape)))),
       forward=lambda xp, a, dims: a.transpose(_check_perm(dims, a.ndim)), vjp=_permute_vjp,
       attrs={"dims": ("ints", REQUIRED)},
       samples=(S(F(2, 3, 4), dims=(2, 0, 1)), S(F(2, 3), dims=(-1, 0)), S(F(), dims=()),
                S(F(0, 2, 1), dims=(1, 2, 0))))


# --- broadcast_to / repeat -----------------------------------------------------------------
def _infer_broadcast_to(m, size):
    return _meta(m, expand_shape(m[0].shape, tuple(size)))


define("broadcast_to", batch=_batch.to_shape('size'), infer=_infer_broadcast_to,
       forward=lambda xp, a, size:
           xp.broadcast_to(a, _infer_broadcast_to([Meta(a.shape, "")], size).shape),
       vjp=lambda g, x, out, size: g, attrs={"size": ("ints", REQUIRED)},
       samples=(S(F(3), size=(2, 3)), S(F(2, 1), size=(2, 4)), S(F(), size=(2, 2)),
                S(F(1, 3), size=(0, 3)), S(F(2, 1), size=(3, -1, 2))))


def _repeat_shape(shape, repeats):
    if len(repeats) < len(shape):
        raise OpError("Number of dimensions of repeat dims can not be smaller than number of "
                      "dimensions of tensor")
    padded = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    return padded, tuple(r * s for r, s in zip(repeats, padded))


def _repeat_vjp(g, x, out, repeats):
    padded, _ = _repeat_shape(x.shape, repeats)
    split = tuple(v for r, s in zip(repeats, padded) for v in (r, s))
    summed = g.reshape(shape=split).sum(dim=tuple(range(0, len(split), 2)))
    return summed.reshape(shape=x.shape)


define("repeat",
       batch=_batch.repeat,
       infer=lambda m, repeats: _meta(m, _repeat_shape(m[0].shape, repeats)[1]),
       forward=lambda xp, a, repeats:
           xp.tile(a.reshape(_repeat_shape(a.shape, repeats)[0]), repeats),
       vjp=_repeat_vjp, attrs={"repeats": ("ints", REQUIRED)},
       samples=(S(F(2, 3), repeats=(2, 1)), S(F(3), repeats=(2, 2)), S(F(), repeats=(3,)),
                S(F(0, 2), repeats=(2, 2))))


# --- cat / stack / narrow / split / chunk / pad ----------------------------------------------
def _infer_cat(metas, dim):
    if not metas:
        raise OpError("torch.cat(): expected a non-empty list of Tensors")
    ref = next((m for m in metas if m.shape != (0,)), metas[0])
    for i, m in enumerate(metas):  # PyTorch looks for a 0-d tensor before the dim
        if not m.shape:
            raise OpError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    from ._types import result_type
    if ref.shape == (0,):  # only legacy empty tensors: PyTorch skips them all, dim unread
        return Meta((0,), result_type(list(metas)))
    d = check_dim(dim, len(ref.shape))
    total = 0
    for i, m in enumerate(metas):
        if m.shape == (0,) and ref.shape != (0,):
            continue  # legacy: 1-D empty tensors are skipped
        if len(m.shape) != len(ref.shape):
            raise OpError(f"Tensors must have same number of dimensions: got {len(ref.shape)} "
                          f"and {len(m.shape)}")
        for j, (a, b) in enumerate(zip(ref.shape, m.shape)):
            if j != d and a != b:
                raise OpError(f"Sizes of tensors must match except in dimension {d}. Expected "
                              f"size {a} but got size {b} for tensor number {i} in the list.")
        total += m.shape[d]
    return Meta(ref.shape[:d] + (total,) + ref.shape[d + 1:], result_type(list(metas)))


def _cat_forward(xp, *arrays, dim):
    keep = [a for a in arrays if a.shape != (0,)]
    if not keep:  # only legacy empty tensors (see _infer_cat)
        return xp.concatenate(arrays, axis=0)
    return xp.concatenate(keep, axis=check_dim(dim, keep[0].ndim))


def _cat_vjp(g, *xs, out, index, dim):
    if xs[index].shape == (0,):
        # a legacy empty tensor's gradient is PyTorch's fresh at::zeros({0}) (its
        # cat_tensors_backward), a constant even when every input is one
        return None
    d = check_dim(dim, g.ndim)
    start = sum(x.shape[d] for x in xs[:index] if x.shape != (0,))
    return g.narrow(dim=d, start=start, length=xs[index].shape[d])


define("cat",
       batch=_batch.same_rank(_batch.all_batched(_batch.dims_shift('dim'))),
       nin=-1, infer=_infer_cat, forward=_cat_forward, variadic_rule=_cat_vjp,
       attrs={"dim": ("int", 0)}, promote=True,
       samples=(S(F(2, 3), F(4, 3)), S(F(2, 3), F(2, 1), F(2, 2), dim=1),
                S(F(0, 3), F(2, 3)), S(F(3), F(0), F(2)), S(F(0), F(0), dim=1)))


def _infer_stack(metas, dim):
    if not metas:
        raise OpError("stack expects a non-empty TensorList")
    for i, m in enumerate(metas):
        if m.shape != metas[0].shape:
            raise OpError(f"stack expects each tensor to be equal size, but got "
                          f"{list(metas[0].shape)} at entry 0 and {list(m.shape)} at entry {i}")
    from ._types import result_type
    d = check_dim(dim, len(metas[0].shape) + 1)
    shape = metas[0].shape
    return Meta(shape[:d] + (len(metas),) + shape[d:], result_type(list(metas)))


define("stack",
       batch=_batch.all_batched(_batch.dims_shift('dim', extra=1)),
       nin=-1, infer=_infer_stack,
       forward=lambda xp, *a, dim: xp.stack(a, axis=check_dim(dim, a[0].ndim + 1)),
       # the piece's gradient is g selected at its index along dim (PyTorch's unbind: a
       # create_graph gradient through it ends with SelectBackward0)
       variadic_rule=lambda g, *xs, out, index, dim: g.index(
           key=",".join([":"] * check_dim(dim, g.ndim) + [str(index)])),
       attrs={"dim": ("int", 0)}, promote=True,
       samples=(S(F(2, 3), F(2, 3)), S(F(2, 3), F(2, 3), F(2, 3), dim=-1),
                S(F(), F()), S(F(0, 2), F(0, 2), dim=1)))


def _infer_narrow(m, dim, start, length):
    shape = m[0].shape
    if not shape:
        raise OpError("narrow() cannot be applied to a 0-dim tensor.")
    d = check_dim(dim, len(shape))
    s = start + shape[d] if start < 0 else start
    if not 0 <= s <= shape[d] or length < 0 or s + length > shape[d]:
        raise OpError(f"start ({start}) + length ({length}) exceeds dimension size ({shape[d]}).")
    return _meta(m, shape[:d] + (length,) + shape[d + 1:])


def _narrow_slice(ndim, dim, start, length, size):
    d = check_dim(dim, ndim)
    s = start + size if start < 0 else start
    return (slice(None),) * d + (slice(s, s + length),), d, s


def _narrow_forward(xp, a, dim, start, length):
    key, _, _ = _narrow_slice(a.ndim, dim, start, length, a.shape[check_dim(dim, a.ndim)])
    return a[key]


def _narrow_vjp(g, x, out, dim, start, length):
    d = check_dim(dim, x.ndim)
    s = start + x.shape[d] if start < 0 else start
    return g.pad(pad=_pad_for(x.ndim, d, s, x.shape[d] - s - length))


def _pad_for(ndim, d, before, after):
    """F.pad's flat (last dim first) list with one dim padded."""
    pad = [0] * (2 * (ndim - d))
    pad[-2], pad[-1] = before, after
    return tuple(pad)


_NARROW = {"dim": ("int", REQUIRED), "start": ("int", REQUIRED), "length": ("int", REQUIRED)}
define("narrow",
       batch=_batch.dims_shift('dim'),
       infer=_infer_narrow, forward=_narrow_forward, vjp=_narrow_vjp, attrs=_NARROW,
       samples=(S(F(4, 3), dim=0, start=1, length=2), S(F(2, 5), dim=-1, start=-3, length=3),
                S(F(3, 2), dim=0, start=1, length=0)))


def split_sizes(size: int, split_size_or_sections, dim: int = 0) -> list[int]:
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise OpError(f"split_size can only be 0 if dimension size is 0, but got dimension "
                          f"size of {size}")
        if not size or not step:  # nothing to split: one empty piece
            return [0]
        return [min(step, size - i) for i in range(0, size, step)]
    if any(s < 0 for s in split_size_or_sections):
        raise OpError("split_with_sizes expects split_sizes have only non-negative entries, "
                      f"but got split_sizes={list(split_size_or_sections)}")
    if sum(split_size_or_sections) != size:
        raise OpError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input "
                      f"tensor's size at dimension {dim}), but got split_sizes="
                      f"{list(split_size_or_sections)}")
    return list(split_size_or_sections)


def chunk_sizes(size: int, chunks: int) -> list[int]:
    if chunks <= 0:
        raise OpError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    step = -(-size // chunks)
    return split_sizes(size, max(step, 1)) if size else [0] * chunks  # PyTorch: `chunks` empty


def piece_sizes(shape: tuple[int, ...], dim: int, kind: str, arg) -> list[int]:
    """The sizes of split's or chunk's pieces along dim, checked in PyTorch's order."""
    if not shape:
        raise OpError(f"{kind} expects at least a 1-dimensional tensor")
    if kind == "chunk" and arg <= 0:
        raise OpError("chunk expects `chunks` to be greater than 0, got: " + str(arg))
    if kind == "split" and isinstance(arg, int) and arg < 0:
        raise OpError(f"split expects split_size be non-negative, but got split_size={arg}")
    d = check_dim(dim, len(shape))
    return chunk_sizes(shape[d], arg) if kind == "chunk" else split_sizes(shape[d], arg, d)


def _piece(shape, dim, sizes, index):
    if not shape:
        raise OpError("split/chunk expects at least a 1-dimensional tensor")
    d = check_dim(dim, len(shape))
    if not -len(sizes) <= index < len(sizes):
        raise OpError(f"index {index} out of range for {len(sizes)} pieces")
    index %= len(sizes)
    return d, sum(sizes[:index]), sizes[index]


def _split_piece(shape, a, kind):
    arg = a["split_size_or_sections"] if kind == "split" else a["chunks"]
    return _piece(shape, a["dim"], piece_sizes(shape, a["dim"], kind, arg), a["index"])


def _piece_rules(kind: str) -> dict:
    """split and chunk: the narrow that gives piece `index` (their one difference is how the
    sizes are given)."""
    def infer(m, **a):
        d, start, length = _split_piece(m[0].shape, a, kind)
        return _infer_narrow(m, d, start, length)

    def forward(xp, x, **a):
        d, start, length = _split_piece(x.shape, a, kind)
        return _narrow_forward(xp, x, d, start, length)

    def vjp(g, x, out, **a):
        d, start, length = _split_piece(x.shape, a, kind)
        return _narrow_vjp(g, x, out, d, start, length)

    return {"infer": infer, "forward": forward, "vjp": vjp}


define("split", batch=_batch.dims_shift('dim'), **_piece_rules("split"),
       attrs={"split_size_or_sections": ("int_or_ints", REQUIRED), "dim": ("int", 0),
              "index": ("int", REQUIRED)},
       samples=(S(F(5, 3), split_size_or_sections=2, index=2),
                S(F(2, 6), split_size_or_sections=(1, 2, 3), dim=1, index=1),
                S(F(4), split_size_or_sections=2, index=-1)))
define("chunk", batch=_batch.dims_shift('dim'), **_piece_rules("chunk"),
       attrs={"chunks": ("int", REQUIRED), "dim": ("int", 0), "index": ("int", REQUIRED)},
       samples=(S(F(5, 3), chunks=2, index=1), S(F(2, 6), chunks=3, dim=1, index=0)))


def _pad_pairs(ndim, pad):
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise OpError(f"Padding length should be less than or equal to two times the input "
                      f"dimension but got padding length {len(pad)} and input of dimension {ndim}"
                      if len(pad) % 2 == 0 else "Padding length must be divisible by 2")
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return pairs


_MODES = ("constant", "reflect", "replicate", "circular")


def _infer_pad(m, pad, mode, value):
    shape = m[0].shape
    pairs = _pad_pairs(len(shape), pad)
    if mode not in _MODES:
        raise OpError(f"Unrecognised padding mode {mode}")
    if mode != "constant":
        _check_nonconstant(shape, pad, pairs, mode)
    out = tuple(s + a + b for s, (a, b) in zip(shape, pairs))
    if any(s < 0 for s in out):
        raise OpError(f"The input size {list(shape)}, plus negative padding {list(pad)} "
                      f"resulted in a negative output size, which is invalid.")
    return _meta(m, out)


def _check_nonconstant(shape, pad, pairs, mode):
    k = len(pad) // 2
    if not (k in (1, 2, 3) and k + 1 <= len(shape) <= k + 2):
        raise OpError(f"Padding size {len(pad)} is not supported for {len(shape)}D input "
                      "tensor.")
    for d, (lo, hi) in enumerate(pairs):
        if not lo and not hi:
            continue
        limit = shape[d] - 1 if mode == "reflect" else shape[d]
        if lo < 0 or hi < 0 or (mode != "replicate" and max(lo, hi) > limit) or not shape[d]:
            raise OpError(f"Argument #4: Padding size should be less than the corresponding "
                          f"input dimension, but got: padding ({lo}, {hi}) at dimension {d} "
                          f"of input {list(shape)}")


def source_index(xp, mode, n, lo, hi):
    """For each position of a padded dim, the position of the input it copies."""
    p = xp.arange(-lo, n + hi)
    if mode == "reflect":
        p = xp.abs(p)
        return xp.where(p > n - 1, 2 * (n - 1) - p, p)
    if mode == "replicate":
        return xp.clip(p, 0, n - 1)
    return p % n  # circular


def _pad_forward(xp, a, pad, mode, value):
    pairs = _pad_pairs(a.ndim, pad)
    if mode != "constant":
        for d, (lo, hi) in enumerate(pairs):
            if lo or hi:
                a = xp.take(a, source_index(xp, mode, a.shape[d], lo, hi), axis=d)
        return a
    crop = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for s, (lo, hi) in zip(a.shape, pairs))
    a = a[crop]  # negative padding crops, as in F.pad
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    return xp.pad(a, grow, constant_values=value) if any(any(p) for p in grow) else a


def _pad_backward_forward(xp, g, pad, mode, shape):
    """Adjoint of a non-constant pad: every padded element adds back onto its source."""
    pairs = _pad_pairs(len(shape), pad)
    for d in range(len(shape) - 1, -1, -1):
        lo, hi = pairs[d]
        if not (lo or hi):
            continue
        out = xp.zeros(g.shape[:d] + (shape[d],) + g.shape[d + 1:], dtype=g.dtype)
        scatter_add(xp, out, (slice(None),) * d + (source_index(xp, mode, shape[d], lo, hi),), g)
        g = out
    return g


def _pad_vjp(g, x, out, pad, mode, value):
    if mode == "constant":
        return g.pad(pad=tuple(-p for p in pad))
    return g.pad_backward(pad=pad, mode=mode, shape=x.shape)


define("pad", batch=_batch.pad, infer=_infer_pad, forward=_pad_forward, vjp=_pad_vjp,
       attrs={"pad": ("ints", REQUIRED), "mode": ("str", "constant"), "value": ("float", 0.0)},
       samples=(S(F(2, 3), pad=(1, 2)), S(F(2, 3, 4), pad=(1, 0, 0, 2), value=1.5),
                S(F(3, 4), pad=(-1, 1, 2, -1)), S(F(0, 2), pad=(1, 1)),
                S(F(1, 3, 4), pad=(2, 1), mode="reflect"),
                S(F(2, 3, 4), pad=(1, 2, 2, 0), mode="replicate"),
                S(F(1, 2, 3, 4), pad=(3, 2, 1, 1), mode="circular"),
                S(F(2, 3, 4), pad=(1, 1, 2, 1), mode="reflect")))


def _infer_pad_backward(m, pad, mode, shape):
    if mode == "constant" or mode not in _MODES:
        raise OpError(f"pad_backward: mode must be reflect, replicate or circular, got {mode}")
    want = _infer_pad([Meta(tuple(shape), m[0].dtype)], pad, mode, 0.0).shape
    if want != m[0].shape:
        raise OpError(f"pad_backward: gradient {list(m[0].shape)} does not match the padded "
                      f"shape {list(want)}")
    return _meta(m, tuple(shape))


define("pad_backward", batch=_batch.pad, infer=_infer_pad_backward, forward=_pad_backward_forward,
       vjp=lambda h, g, out, pad, mode, shape: h.pad(pad=pad, mode=mode),
       attrs={"pad": ("ints", REQUIRED), "mode": ("str", REQUIRED), "shape": ("ints", REQUIRED)},
       samples=(S(F(1, 3, 7), pad=(2, 1), mode="reflect", shape=(1, 3, 4)),
                S(F(1, 2, 5, 9), pad=(3, 2, 1, 1), mode="circular", shape=(1, 2, 3, 4)),
                S(F(2, 5, 7), pad=(1, 2, 2, 0), mode="replicate", shape=(2, 3, 4))))


# --- flip / tril / triu --------------------------------------------------------------------
def _infer_flip(m, dims):
    normalize_dims(dims, len(m[0].shape))  # only to check the dims
    return _meta(m, m[0].shape)


define("flip", batch=_batch.dims_shift('dims'), infer=_infer_flip,
       forward=lambda xp, a, dims:
           xp.flip(a, axis=normalize_dims(dims, a.ndim)) if a.ndim else a,
       vjp=lambda g, x, out, dims: g.flip(dims=dims), attrs={"dims": ("ints", REQUIRED)},
       samples=(S(F(2, 3), dims=(0,)), S(F(2, 3, 4), dims=(0, 2)), S(F(), dims=()),
                S(F(0, 3), dims=(1,))))


def _infer_tri(name):
    def infer(m, diagonal):
        if len(m[0].shape) < 2:  # PyTorch's message names the op
            raise OpError(f"{name}: input tensor must have at least 2 dimensions")
        return _meta(m, m[0].shape)
    return infer


_TRI = (S(F(3, 4)), S(F(2, 3, 3), diagonal=1), S(F(4, 3), diagonal=-1), S(F(0, 2)))
define("tril",
       batch=_batch.keep_attrs,
       infer=_infer_tri("tril"), forward=lambda xp, a, diagonal: xp.tril(a, k=diagonal),
       vjp=lambda g, x, out, diagonal: g.tril(diagonal=diagonal),
       attrs={"diagonal": ("int", 0)}, samples=_TRI)
define("triu",
       batch=_batch.keep_attrs,
       infer=_infer_tri("triu"), forward=lambda xp, a, diagonal: xp.triu(a, k=diagonal),
       vjp=lambda g, x, out, diagonal: g.triu(diagonal=diagonal),
       attrs={"diagonal": ("int", 0)}, samples=_TRI)
