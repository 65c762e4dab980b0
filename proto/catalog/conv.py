"""2-D convolution and pooling over NCHW tensors.

conv2d's derivatives are two ops of their own, conv2d_input_grad and conv2d_weight_grad;
all three are one bilinear form seen from different sides, so each one's derivative is
one of the others and every order of derivative stays inside these three ops. max_pool2d
likewise has max_pool2d_backward (scatter to each window's argmax) and max_pool2d_select
(read at each window's argmax), adjoint to each other. avg_pool2d is a composite: a
grouped conv2d with a constant kernel.
"""

from __future__ import annotations

from ._special import scatter_add
from . import _batching as _batch
from . import _batching_nn as _batch_nn
from ._registry import REQUIRED, define
from ._samples import F, S
from ._types import FLOATING, ITEMSIZE, Meta, OpError
from .indexing import open_grid

_CONV = {"stride": ("int_or_ints", 1), "padding": ("padding", 0),
         "dilation": ("int_or_ints", 1), "groups": ("int", 1)}


def pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise OpError(f"expected an int or a pair, got {list(v)}")
    return tuple(v)


def out_size(n, k, s, p, d, extra=0):
    """Output length for padding p on both sides (plus `extra` on the right)."""
    if s <= 0:
        raise OpError("non-positive stride is not supported")
    if d <= 0 or p < 0 or k <= 0:
        raise OpError(f"dilation should be greater than zero, padding non-negative and kernel "
                      f"size positive, got dilation={d}, padding={p}, kernel_size={k}")
    return (n + 2 * p + extra - d * (k - 1) - 1) // s + 1


def conv_pads(padding, kernel, stride, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """(before, after) per spatial dim. "same" keeps the size at stride 1; when the total
    is odd the extra element goes after, as in PyTorch."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if pair(stride) != (1, 1):
            raise OpError("padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for d, k in zip(pair(dilation), kernel)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, str):
        raise OpError(f"Invalid padding string: '{padding}'")
    ph, pw = pair(padding)
    return (ph, ph), (pw, pw)


def _geometry(xshape, wshape, stride, padding, dilation):
    s, d = pair(stride), pair(dilation)
    pads = conv_pads(padding, wshape[-2:], stride, dilation)
    ho = out_size(xshape[2], wshape[-2], s[0], pads[0][0], d[0], pads[0][1] - pads[0][0])
    wo = out_size(xshape[3], wshape[-1], s[1], pads[1][0], d[1], pads[1][1] - pads[1][0])
    return s, pads, d, ho, wo


def _infer_conv(metas, stride, padding, dilation, groups):
    if not 2 <= len(metas) <= 3:
        raise OpError(f"conv2d: expected 2 or 3 inputs, got {len(metas)}")
    x, w = metas[0], metas[1]
    if len(x.shape) not in (3, 4) or len(w.shape) != 4:
        raise OpError(f"Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
                      f"input of size: {list(x.shape)}")
    if len(x.shape) == 3:  # unbatched (C, H, W): a batch of one without the batch dim
        out = _infer_conv([Meta((1,) + x.shape, x.dtype), *metas[1:]], stride, padding,
                          dilation, groups)
        return Meta(out.shape[1:], out.dtype)
    if x.dtype != w.dtype or x.dtype not in FLOATING:
        raise OpError(f"Input type ({x.dtype}) and weight type ({w.dtype}) should be the same "
                      "floating point type")
    if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise OpError(f"Given groups={groups}, weight of size {list(w.shape)}, expected "
                      f"input{list(x.shape)} to have {w.shape[1] * groups} channels, but got "
                      f"{x.shape[1]} channels instead")
    if len(metas) == 3 and metas[2].shape != (w.shape[0],):
        raise OpError(f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional "
                      f"with {w.shape[0]} elements, but got bias of size {list(metas[2].shape)}")
    *_, ho, wo = _geometry(x.shape, w.shape, stride, padding, dilation)
    if ho <= 0 or wo <= 0:
        raise OpError(f"Calculated output size: ({w.shape[0]}x{ho}x{wo}). Output size is too "
                      "small")
    return Meta((x.shape[0], w.shape[0], ho, wo), x.dtype)


def _windows(xp, x, k, stride, dilation, ho, wo, groups):
    """(N, G, Cg, Ho, Wo, kh, kw) strided view of an already padded NCHW array."""
    n, c = x.shape[:2]
    s_n, s_c, s_h, s_w = x.strides
    cg = c // groups
    return xp.lib.stride_tricks.as_strided(
        x, (n, groups, cg, ho, wo, k[0], k[1]),
        (s_n, cg * s_c, s_c, s_h * stride[0], s_w * stride[1], s_h * dilation[0],
         s_w * dilation[1]))


def _einsum(xp, eq, *ops):
    # numpy's einsum only goes through BLAS with optimize=True; CuPy's always does.
    if xp.__name__ == "numpy":
        return xp.einsum(eq, *ops, optimize=True)
    return xp.einsum(eq, *ops)


def _pad_hw(xp, x, pads):
    if pads == ((0, 0), (0, 0)):
        return x
    return xp.pad(x, ((0, 0), (0, 0)) + tuple(pads))


def _grouped_weight(w, groups):
    o, cg, kh, kw = w.shape
    return w.reshape(groups, o // groups, cg, kh, kw)


def _conv_forward(xp, x, w, b=None, *, stride, padding, dilation, groups):
    if x.ndim == 3:
        return _conv_forward(xp, x[None], w, b, stride=stride, padding=padding,
                             dilation=dilation, groups=groups)[0]
    s, p, d, ho, wo = _geometry(x.shape, w.shape, stride, padding, dilation)
    win = _windows(xp, _pad_hw(xp, x, p), w.shape[2:], s, d, ho, wo, groups)
    out = _einsum(xp, "ngchwij,gocij->ngohw", win, _grouped_weight(w, groups))
    out = out.reshape(x.shape[0], w.shape[0], ho, wo)
    return out + b.reshape(1, -1, 1, 1) if b is not None else out


def _input_grad_forward(xp, g, w, *, input_shape, stride, padding, dilation, groups):
    if len(input_shape) == 3:
        return _input_grad_forward(xp, g[None], w, input_shape=(1,) + tuple(input_shape),
                                   stride=stride, padding=padding, dilation=dilation,
                                   groups=groups)[0]
    s, p, d, ho, wo = _geometry(input_shape, w.shape, stride, padding, dilation)
    n, c, h, wd = input_shape
    gg = g.reshape(n, groups, w.shape[0] // groups, ho, wo)
    col = _einsum(xp, "ngohw,gocij->ngchwij", gg, _grouped_weight(w, groups))
    hp, wp = h + sum(p[0]), wd + sum(p[1])
    full = xp.zeros((n, groups, c // groups, hp, wp), dtype=g.dtype)
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            r, q = i * d[0], j * d[1]
            full[..., r:r + s[0] * (ho - 1) + 1:s[0], q:q + s[1] * (wo - 1) + 1:s[1]] += \
                col[..., i, j]
    full = full.reshape(n, c, hp, wp)
    return full[:, :, p[0][0]:p[0][0] + h, p[1][0]:p[1][0] + wd]


def _weight_grad_forward(xp, x, g, *, weight_shape, stride, padding, dilation, groups):
    if x.ndim == 3:
        x, g = x[None], g[None]
    s, p, d, ho, wo = _geometry(x.shape, weight_shape, stride, padding, dilation)
    win = _windows(xp, _pad_hw(xp, x, p), weight_shape[2:], s, d, ho, wo, groups)
    gg = g.reshape(x.shape[0], groups, weight_shape[0] // groups, ho, wo)
    return _einsum(xp, "ngchwij,ngohw->gocij", win, gg).reshape(weight_shape)


def _conv_attrs(a):
    return {k: a[k] for k in ("stride", "padding", "dilation", "groups")}


def _conv_vjp(g, x, w, *b, out, index, **a):
    if index == 0:
        return g.conv2d_input_grad(w, input_shape=x.shape, **a)
    if index == 1:
        return x.conv2d_weight_grad(g, weight_shape=w.shape, **a)
    return g.sum(dim=(0, 2, 3) if g.ndim == 4 else (1, 2))


define("conv2d",
       batch=_batch_nn.conv2d,
       nin=-1, infer=_infer_conv, forward=_conv_forward, variadic_rule=_conv_vjp,
       attrs=dict(_CONV), fresh=True,
       samples=(S(F(2, 3, 5, 5), F(4, 3, 3, 3), F(4)),
                S(F(1, 2, 6, 5), F(3, 2, 2, 3), stride=2, padding=1),
                S(F(1, 4, 7, 7), F(4, 2, 3, 3), F(4), dilation=2, groups=2, padding=(1, 2)),
                S(F(2, 2, 4, 4), F(2, 2, 1, 1), stride=(2, 1)),
                S(F(1, 2, 5, 6), F(3, 2, 2, 3), padding="same", dilation=(2, 1)),
                S(F(1, 2, 5, 6), F(4, 1, 2, 3), padding="same", groups=2),  # odd total
                S(F(1, 2, 5, 6), F(3, 2, 3, 2), F(3), padding="valid"),
                S(F(2, 5, 5), F(3, 2, 3, 3), F(3), padding=1)))


def _infer_input_grad(metas, input_shape, **a):
    g, w = metas
    ref = _infer_conv([Meta(tuple(input_shape), w.dtype), w], **a)
    if ref.shape != g.shape:
        raise OpError(f"conv2d_input_grad: gradient {list(g.shape)} does not match output "
                      f"{list(ref.shape)}")
    return Meta(tuple(input_shape), g.dtype)


def _infer_weight_grad(metas, weight_shape, **a):
    x, g = metas
    ref = _infer_conv([x, Meta(tuple(weight_shape), x.dtype)], **a)
    if ref.shape != g.shape:
        raise OpError(f"conv2d_weight_grad: gradient {list(g.shape)} does not match output "
                      f"{list(ref.shape)}")
    return Meta(tuple(weight_shape), x.dtype)


# <h, input_grad(g, w)> = <g, conv(h, w)>  and  <k, weight_grad(x, g)> = <g, conv(x, k)>.
define("conv2d_input_grad",
       batch=_batch_nn.conv2d_input_grad,
       nin=2, infer=_infer_input_grad, forward=_input_grad_forward,
       vjp=(lambda h, g, w, out, input_shape, **a: h.conv2d(w, **a),
            lambda h, g, w, out, input_shape, **a:
                h.conv2d_weight_grad(g, weight_shape=w.shape, **a)),
       attrs={"input_shape": ("ints", REQUIRED), **_CONV},
       samples=(S(F(2, 4, 3, 3), F(4, 3, 3, 3), input_shape=(2, 3, 5, 5)),
                S(F(1, 3, 4, 3), F(3, 2, 2, 3), input_shape=(1, 2, 6, 5), stride=2,
                  padding=1)))
define("conv2d_weight_grad",
       batch=_batch_nn.conv2d_weight_grad,
       nin=2, infer=_infer_weight_grad, forward=_weight_grad_forward,
       vjp=(lambda k, x, g, out, weight_shape, **a:
                g.conv2d_input_grad(k, input_shape=x.shape, **a),
            lambda k, x, g, out, weight_shape, **a: x.conv2d(k, **a)),
       attrs={"weight_shape": ("ints", REQUIRED), **_CONV},
       samples=(S(F(2, 3, 5, 5), F(2, 4, 3, 3), weight_shape=(4, 3, 3, 3)),
                S(F(1, 4, 7, 7), F(1, 4, 5, 7), weight_shape=(4, 2, 3, 3), dilation=2,
                  groups=2, padding=(1, 2))))


# --- pooling ---------------------------------------------------------------------------------
_POOL = {"kernel_size": ("int_or_ints", REQUIRED), "stride": ("optional_ints", None),
         "padding": ("int_or_ints", 0), "dilation": ("int_or_ints", 1),
         "ceil_mode": ("bool", False)}


def _pool_size(n, k, s, p, d, ceil_mode):
    """Output length and the extra right padding that ceil_mode's last window needs."""
    span = n + 2 * p - d * (k - 1) - 1
    out = out_size(n, k, s, p, d)
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= n + p:  # PyTorch: the last window must start inside the input
            out -= 1
    extra = max(0, (out - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
    return out, extra


def _pool_geometry(shape, kernel_size, stride, padding, dilation, ceil_mode):
    k = pair(kernel_size)
    s = pair(stride) if stride not in ((), None) else k
    p, d = pair(padding), pair(dilation)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise OpError("pad should be at most half of effective kernel size, but got pad="
                      f"{p[0]}, kernel_size={k[0]} and dilation={d[0]}")
    ho, eh = _pool_size(shape[-2], k[0], s[0], p[0], d[0], ceil_mode)
    wo, ew = _pool_size(shape[-1], k[1], s[1], p[1], d[1], ceil_mode)
    pads = ((0, 0), (0, 0), (p[0], p[0] + eh), (p[1], p[1] + ew))
    return k, s, d, ho, wo, pads


def _infer_pool(metas, **a):
    x = metas[0]
    if len(x.shape) not in (3, 4):
        raise OpError(f"non-empty 3D or 4D (batch mode) tensor expected for input, got "
                      f"{len(x.shape)}D")
    *_, ho, wo, _pads = _pool_geometry(x.shape, **a)
    if ho <= 0 or wo <= 0:
        raise OpError(f"Given input size: ({'x'.join(map(str, x.shape[-3:]))}). Calculated "
                      f"output size: ({x.shape[-3]}x{ho}x{wo}). Output size is too small")
    return Meta(x.shape[:-2] + (ho, wo), x.dtype)


def _unbatched(fn):
    """A pooling forward over NCHW that also takes an unbatched (C, H, W) input."""
    def run(xp, *arrays, **a):
        if arrays[-1].ndim == 3:
            return fn(xp, *(t[None] for t in arrays), **a)[0]
        return fn(xp, *arrays, **a)
    return run


def _pool_argmax(xp, x, a):
    """The -inf padded input, and the flat index into its H*W plane of each window's max."""
    k, s, d, ho, wo, pads = _pool_geometry(x.shape, **a)
    xpad = xp.pad(x, pads, constant_values=-xp.inf)
    win = _windows(xp, xpad, k, s, d, ho, wo, 1)[:, 0]   # (N, C, Ho, Wo, kh, kw)
    pick = xp.argmax(win.reshape(win.shape[:4] + (-1,)), axis=-1)
    i, j = pick // k[1], pick % k[1]
    rows = xp.arange(ho).reshape(-1, 1) * s[0] + i * d[0]
    cols = xp.arange(wo).reshape(1, -1) * s[1] + j * d[1]
    return xpad, rows * xpad.shape[-1] + cols, pads


def _take(xp, padded, idx):
    n, c = padded.shape[:2]
    flat = padded.reshape(n, c, -1)
    return xp.take_along_axis(flat, idx.reshape(n, c, -1), axis=-1).reshape(idx.shape)


@_unbatched
def _pool_forward(xp, x, **a):
    xpad, idx, _ = _pool_argmax(xp, x, a)
    return _take(xp, xpad, idx)


@_unbatched
def _pool_backward_forward(xp, g, x, **a):
    xpad, idx, pads = _pool_argmax(xp, x, a)
    n, c, hp, wp = xpad.shape
    full = xp.zeros((n, c, hp * wp), dtype=g.dtype)
    rows = (open_grid(xp, (n, c, 1), 0), open_grid(xp, (n, c, 1), 1), idx.reshape(n, c, -1))
    scatter_add(xp, full, rows, g.reshape(n, c, -1))  # windows overlap: add, never assign
    top, left = pads[2][0], pads[3][0]
    return full.reshape(n, c, hp, wp)[:, :, top:top + x.shape[2], left:left + x.shape[3]]


@_unbatched
def _pool_select_forward(xp, h, x, **a):
    _, idx, pads = _pool_argmax(xp, x, a)
    return _take(xp, xp.pad(h, pads), idx)


_POOL_SAMPLES = (S(F(2, 3, 4, 4), kernel_size=2), S(F(1, 2, 5, 5), kernel_size=3, stride=2,
                                                     padding=1),
                 S(F(1, 1, 6, 5), kernel_size=(2, 3), stride=1, dilation=(2, 1)),
                 S(F(1, 2, 6, 7), kernel_size=3, stride=2, ceil_mode=True),
                 S(F(1, 1, 5, 5), kernel_size=2, stride=2, padding=1, ceil_mode=True),
                 S(F(2, 4, 5), kernel_size=2, stride=1))
define("max_pool2d", batch=_batch.fold(4), infer=_infer_pool, forward=_pool_forward,
       vjp=lambda g, x, out, **a: g.max_pool2d_backward(x, **a), attrs=dict(_POOL),
       samples=_POOL_SAMPLES)
def _infer_pool_backward(metas, **a):
    """max_pool2d_backward(g, x): x checked as max_pool2d checks it, g of the pool's shape
    (a raw client can send this op: it must not reach the kernel or the estimate unchecked)."""
    pooled = _infer_pool(metas[1:], **a)
    if metas[0].shape != pooled.shape:
        raise OpError(f"max_pool2d_backward: gradient of shape {list(metas[0].shape)} for a "
                      f"pool of shape {list(pooled.shape)}")
    return Meta(metas[1].shape, metas[0].dtype)


def _infer_pool_select(metas, **a):
    """max_pool2d_select(h, x): h of x's shape, x checked as max_pool2d checks it."""
    if metas[0].shape != metas[1].shape:
        raise OpError(f"max_pool2d_select: {list(metas[0].shape)} is not the input's shape "
                      f"{list(metas[1].shape)}")
    return _infer_pool(metas[1:], **a)


define("max_pool2d_backward",
       batch=_batch.fold(4, data=(0, 1)),
       nin=2, infer=_infer_pool_backward, forward=_pool_backward_forward,
       vjp=(lambda h, g, x, out, **a: h.max_pool2d_select(x, **a), None), attrs=dict(_POOL),
       samples=(S(F(2, 3, 2, 2), F(2, 3, 4, 4), kernel_size=2, grad=(0,)),))
define("max_pool2d_select",
       batch=_batch.fold(4, data=(0, 1)),
       nin=2, infer=_infer_pool_select, forward=_pool_select_forward,
       vjp=(lambda k, h, x, out, **a: k.max_pool2d_backward(x, **a), None), attrs=dict(_POOL),
       samples=(S(F(2, 3, 4, 4), F(2, 3, 4, 4), kernel_size=2, grad=(0,)),))


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    """A grouped conv2d with a kernel of ones, divided by the window size, the count of
    real (unpadded) elements, or divisor_override."""
    k = pair(kernel_size)
    c = x.shape[-3]
    conv = {"stride": stride if stride not in ((), None) else k, "padding": padding}
    total = x.conv2d(x.new_full(shape=(c, 1, k[0], k[1]), value=1.0), groups=c, **conv)
    if divisor_override:
        return total / divisor_override
    if count_include_pad or pair(padding) == (0, 0):
        return total / (k[0] * k[1])
    ones = x.new_full(shape=(1,) * (x.ndim - 2) + x.shape[-2:], value=1.0)
    counts = ones.conv2d(x.new_full(shape=(1, 1, k[0], k[1]), value=1.0), **conv)
    return total / counts


def _infer_avg_pool(metas, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override):
    if ceil_mode:
        raise OpError("avg_pool2d: ceil_mode=True is not supported")
    if divisor_override is not None and divisor_override <= 0:
        raise OpError("divisor must be not zero")
    return _infer_pool(metas, kernel_size=kernel_size, stride=stride, padding=padding,
                       dilation=1, ceil_mode=False)


define("avg_pool2d", batch=_batch.fold(4), infer=_infer_avg_pool, decompose=_avg_pool,
       attrs={"kernel_size": ("int_or_ints", REQUIRED),
              "stride": ("optional_ints", None), "padding": ("int_or_ints", 0),
              "ceil_mode": ("bool", False), "count_include_pad": ("bool", True),
              "divisor_override": ("optional_int", None)},
       samples=(S(F(2, 3, 4, 4), kernel_size=2),
                S(F(1, 2, 5, 5), kernel_size=3, stride=2, padding=1),
                S(F(1, 2, 5, 6), kernel_size=3, stride=2, padding=1,
                  count_include_pad=False),
                S(F(1, 2, 4, 4), kernel_size=2, divisor_override=3),
                S(F(2, 5, 5), kernel_size=3, stride=2, padding=1, count_include_pad=False)))


# --- window temporaries -------------------------------------------------------------------
# What the forwards above allocate besides their result, from shapes alone, for the memory
# estimate (worker/estimate.py): a padded copy of the input, the windows gathered into one
# array (N*C*Ho*Wo*kh*kw elements: a kernel as large as the image makes that image-squared),
# and max pooling's int64 index arrays. Counted as if every one were alive at once.
def _batched(shape) -> tuple[int, ...]:
    return tuple(shape) if len(shape) == 4 else (1, *shape)


def conv_scratch_bytes(op: str, metas, attrs) -> int:
    """Temporaries of conv2d, conv2d_input_grad and conv2d_weight_grad, in bytes."""
    a = _conv_attrs(attrs)
    if op == "conv2d_input_grad":
        (n, c, h, w), wshape = _batched(attrs["input_shape"]), metas[1].shape
    elif op == "conv2d_weight_grad":
        (n, c, h, w), wshape = _batched(metas[0].shape), attrs["weight_shape"]
    else:
        (n, c, h, w), wshape = _batched(metas[0].shape), metas[1].shape
    _s, p, _d, ho, wo = _geometry((n, c, h, w), wshape, a["stride"], a["padding"],
                                  a["dilation"])
    item = ITEMSIZE[metas[0].dtype]
    padded = n * c * (h + sum(p[0])) * (w + sum(p[1]))
    # The windows (or the input gradient's columns) twice: numpy's einsum transposes them
    # into a contiguous copy and reshapes that for BLAS (a conv2d's traced peak, measured).
    windows = 2 * n * c * ho * wo * wshape[2] * wshape[3]
    extra = n * wshape[0] * ho * wo if op == "conv2d" else 0  # the result before its bias
    return item * (padded + windows + extra)


def pool_scratch_bytes(op: str, metas, attrs) -> int:
    """Temporaries of max_pool2d, max_pool2d_backward and max_pool2d_select, in bytes."""
    x = metas[-1] if op != "max_pool2d" else metas[0]
    n, c, h, w = _batched(x.shape)
    k, _s, _d, ho, wo, pads = _pool_geometry((n, c, h, w), **attrs)
    item = ITEMSIZE[x.dtype]
    padded = n * c * (h + sum(pads[2])) * (w + sum(pads[3]))
    windows = n * c * ho * wo * k[0] * k[1]
    indices = 6 * n * c * ho * wo * 8  # argmax, its row and column, and the flat index
    twice = 2 if op != "max_pool2d" else 1  # the gradient's padded plane or scatter target
    return item * (twice * padded + windows) + indices
