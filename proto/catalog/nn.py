"""Neural-network functions (torch.nn.functional names and arguments).

linear has a fused forward and explicit derivatives (it is the hot path of training).
The rest are *composites*: `forward=None` and a `decompose` written with catalog ops. The
engine replaces a composite node by its decomposition when it lowers the graph, so its
value and every order of derivative come from ops that are checked one by one. Optional
tensor arguments (weight, bias) are trailing inputs: `linear(x, w)` or `linear(x, w, b)`;
binary_cross_entropy_with_logits takes pos_weight only after weight (pass ones for no
weight).

Dropout takes its mask as an input: the client draws it, so the graph stays a pure
function of its leaves.
"""

from __future__ import annotations

from ._ce_rows_host import ce_rows_backward_host, ce_rows_host, host_applies, targets_ok
from ._checks import CheckedRuntimeError, fail_if
from .elementwise import refuse_bool_sub
from .linalg import mm_dtype_error
from . import _batching as _batch
from . import _batching_nn as _batch_nn
from ._registry import REQUIRED, define
from ._samples import B, F, I, P, S, X
from ._special import ce_rows, ce_rows_apply
from .reductions import _log_softmax_forward
from ._types import (
    FLOATING,
    INTEGRAL,
    Meta,
    OpError,
    broadcast_shapes,
    numel,
    promote_types,
    torch_dtype_name,
)

_REDUCTIONS = ("none", "mean", "sum")


def _arity(name, metas, lo, hi):
    if not lo <= len(metas) <= hi:
        raise OpError(f"{name}: expected {lo} to {hi} inputs, got {len(metas)}")


# --- linear -------------------------------------------------------------------------------
def _infer_linear(metas):
    _arity("linear", metas, 2, 3)
    x, w = metas[0], metas[1]
    if len(w.shape) != 2 or not x.shape or x.shape[-1] != w.shape[1]:
        rows = numel(x.shape[:-1]) if x.shape else 1
        raise OpError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x"
                      f"{x.shape[-1] if x.shape else 1} and {w.shape[-1] if w.shape else 1}x"
                      f"{w.shape[0] if w.shape else 1})")
    if len(metas) == 3 and metas[2].dtype != w.dtype:  # PyTorch's addmm(bias, x, w.t())
        raise OpError("self and mat2 must have the same dtype, but got "
                      f"{torch_dtype_name(metas[2].dtype)} and {torch_dtype_name(w.dtype)}")
    if x.dtype != w.dtype:
        raise mm_dtype_error(x.dtype, w.dtype)
    return Meta(x.shape[:-1] + (w.shape[0],), x.dtype)


def _linear_forward(xp, x, w, b=None):
    out = xp.matmul(x, w.T)
    if b is not None:
        out += b  # out is a fresh array: adding in place saves one temporary
    return out


def _linear_vjp(g, x, w, *b, out, index):
    if index == 0:
        return g.matmul(w)
    if index == 2:
        return g  # the engine sums it back to the bias's shape
    if x.ndim == 1:
        return g.outer(x)
    if x.ndim > 2:
        rows = numel(x.shape[:-1])
        g = g.reshape(shape=(rows, g.shape[-1]))
        x = x.reshape(shape=(rows, x.shape[-1]))
    return g.transpose(dim0=0, dim1=1).mm(x)


define("linear",
       batch=_batch_nn.linear,
       nin=-1, infer=_infer_linear, forward=_linear_forward, variadic_rule=_linear_vjp,
       fresh=True, samples=(S(F(5, 4), F(3, 4), F(3)), S(F(5, 4), F(3, 4)), S(F(4), F(3, 4), F(3)),
                S(F(2, 5, 4), F(3, 4), F(3)), S(F(0, 4), F(3, 4), F(3))))


# --- layer_norm / embedding / dropout -------------------------------------------------------
def _infer_layer_norm(metas, normalized_shape, eps):
    _arity("layer_norm", metas, 1, 3)
    x = metas[0]
    k = len(normalized_shape)
    if k == 0 or x.shape[len(x.shape) - k:] != tuple(normalized_shape) or k > len(x.shape):
        raise OpError(f"Given normalized_shape={list(normalized_shape)}, expected input with "
                      f"shape [*, {', '.join(map(str, normalized_shape))}], but got input of "
                      f"size{list(x.shape)}")
    for m in metas[1:]:
        if m.shape != tuple(normalized_shape):
            raise OpError(f"Expected weight to be of same shape as normalized_shape, but got "
                          f"weight of shape {list(m.shape)} and normalized_shape = "
                          f"{list(normalized_shape)}")
    return Meta(x.shape, x.dtype)


# PyTorch's CPU RowwiseMoments: Welford over lanes of its vectors (float64: 4, float32: 8;
# element i in lane i % L) and over a scalar tail of N % L elements, then the lanes merged
# into the tail with AddMoments' delta * delta * c * m0 term
_MOMENT_LANES = {"float64": 4, "float32": 8}


def _moments_nan(x, mean, dims):
    """Where that term is inf * 0, as PyTorch's merge computes it: with no tail (N % L == 0)
    the first lane's mean squared times m0 = 0; with no lanes (N < L) the tail's mean
    squared times c = 0. Its variance is NaN there, for a mean beyond sqrt(max)."""
    lanes, n = _MOMENT_LANES.get(x.dtype), numel(x.shape[dims[0]:]) if dims else 1
    if lanes is None or n == 0 or (n % lanes and n > lanes):
        return None
    m = mean
    if n >= lanes:  # the first lane's mean: the elements at i % L == 0
        rows = x.reshape(shape=x.shape[:dims[0]] + (n // lanes, lanes))
        m = rows.narrow(dim=-1, start=0, length=1).mean(dim=(-2,), keepdim=True)
        m = m.reshape(shape=mean.shape)
    return (m * m).isinf()


def _layer_norm(x, *wb, normalized_shape, eps):
    if x.dtype == "float16":
        # PyTorch's CPU kernel computes float16 in float32 (moments, scale, weight and
        # bias) and rounds once: in float16 each step rounds (half the values 1 ulp off)
        wide = (t.cast(dtype="float32") for t in (x, *wb))
        return _layer_norm(*wide, normalized_shape=normalized_shape,
                           eps=eps).cast(dtype="float16")
    dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mean = x.mean(dim=dims, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=dims, keepdim=True)
    nan = _moments_nan(x, mean, dims)
    if nan is not None:
        var = nan.logical_not().where(var, float("nan"))
    rstd = (var + eps).rsqrt()
    y = x * rstd + -mean * rstd  # PyTorch's kernel's x * scale + bias (its signs of zero)
    if wb:
        y = y * wb[0]
    if len(wb) > 1:
        y = y + wb[1]
    return y


define("layer_norm",
       batch=_batch_nn.layer_norm,
       nin=-1, infer=_infer_layer_norm, decompose=_layer_norm,
       attrs={"normalized_shape": ("ints", REQUIRED), "eps": ("float", 1e-5)},
       samples=(S(F(4, 5), F(5), F(5), normalized_shape=(5,)),
                S(F(2, 3, 4), normalized_shape=(3, 4)),
                S(F(3, 4), F(4), normalized_shape=(4,), eps=1e-3),
                S(F(0, 4), F(4), F(4), normalized_shape=(4,))))


def _infer_embedding(metas, padding_idx):
    idx, w = metas
    if idx.dtype not in INTEGRAL:
        raise OpError("Expected tensor for argument #1 'indices' to have one of the following "
                      f"scalar types: Long, Int; but got {torch_dtype_name(idx.dtype)} instead")
    if len(w.shape) != 2:
        raise OpError("'weight' must be 2-D")
    return Meta(idx.shape + (w.shape[1],), w.dtype)


def _embedding(idx, w, padding_idx):
    # index_select, not w[idx]: PyTorch refuses negative indices here ("index out of
    # range in self"), where indexing counts them from the end.
    rows = w.index_select(idx.reshape(shape=(numel(idx.shape),)), dim=0).reshape(
        shape=idx.shape + (w.shape[1],))
    if padding_idx is None:
        return rows
    # The padding row is looked up like any other but gets no gradient (as in PyTorch).
    pad = padding_idx % w.shape[0]
    return (idx != pad).unsqueeze(dim=-1).where(rows, rows.detach())


define("embedding", batch=_batch_nn.embedding, nin=2, infer=_infer_embedding, decompose=_embedding,
       attrs={"padding_idx": ("optional_int", None)},
       samples=(S(I((2, 3), 5), F(5, 4), grad=(1,)),
                S(I((4,), 5), F(5, 2), padding_idx=1, grad=(1,), fd=False),
                S(I((), 3), F(3, 2), grad=(1,))))


def _infer_dropout(metas, p, training):
    x, mask = metas
    if not 0 <= p <= 1:
        raise OpError(f"dropout probability has to be between 0 and 1, but got {p}")
    if mask.shape != x.shape:
        raise OpError(f"dropout: mask of shape {list(mask.shape)} does not match the input's "
                      f"{list(x.shape)}")
    return Meta(x.shape, x.dtype)


def _dropout(x, mask, p, training):
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    return x * mask.cast(dtype=x.dtype) * (1.0 / (1.0 - p))


define("dropout", batch=_batch.all_batched(), nin=2, infer=_infer_dropout, decompose=_dropout,
       attrs={"p": ("float", 0.5), "training": ("bool", True)},
       samples=(S(F(3, 4), B(3, 4), grad=(0,)), S(F(5), B(5), p=0.2, grad=(0,)),
                S(F(2, 2), B(2, 2), training=False, grad=(0,))))


# --- losses ---------------------------------------------------------------------------------
def _reduce(losses, reduction, denominator=None):
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    return total / denominator if denominator is not None else losses.mean()


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise OpError(f"{reduction} is not a valid value for reduction")


_BCE_P = lambda *s: F(*s, low=0.05, high=0.95)  # noqa: E731
_BCE_UNIT = lambda *s: F(*s, low=0.0, high=1.0)  # noqa: E731


def _infer_broadcast_loss(name):
    """mse_loss and l1_loss broadcast input and target, as PyTorch does (the SDK warns,
    with PyTorch's words, when their sizes differ), and promote their dtypes."""
    def infer(metas, reduction):
        _check_reduction(reduction)
        x, t = metas[0], metas[1]
        shape = broadcast_shapes(x.shape, t.shape)
        dtype = promote_types(x.dtype, t.dtype)  # PyTorch's: no priority for dims here
        if name == "mse_loss" and dtype not in FLOATING:
            raise OpError(f'"mse_cpu" not implemented for \'{torch_dtype_name(dtype)}\'')
        if name == "l1_loss":  # x - t
            refuse_bool_sub((x.dtype, t.dtype))
        if dtype not in FLOATING and reduction == "mean":
            raise OpError("mean(): could not infer output dtype. Input dtype must be either a "
                          f"floating point or complex dtype. Got: {torch_dtype_name(dtype)}")
        return Meta(shape if reduction == "none" else (), dtype)
    return infer


_POINTWISE = (S(F(3, 4), F(3, 4)), S(F(5), F(5), reduction="sum"),
              S(F(2, 3), F(2, 3), reduction="none"), S(F(), F()),
              S(F(3, 4), F(4), reduction="none"), S(F(4), F(2, 1, 4)),
              S(F(0, 3), F(3), fd=False))  # the mean of nothing is nan
def _promoted(x, t):
    """Input and target in their common dtype (a bool target of mse_loss is a number)."""
    dtype = promote_types(x.dtype, t.dtype)
    return tuple(v if v.dtype == dtype else v.cast(dtype=dtype) for v in (x, t))


def _mse(x, t, reduction):
    x, t = _promoted(x, t)
    return _reduce((x - t) * (x - t), reduction)


def _l1(x, t, reduction):
    x, t = _promoted(x, t)
    return _reduce((x - t).abs(), reduction)


define("mse_loss",
       batch=_batch.with_reduction,
       nin=2, infer=_infer_broadcast_loss("mse_loss"), decompose=_mse,
       attrs={"reduction": ("str", "mean")}, samples=_POINTWISE)
define("l1_loss",
       batch=_batch.with_reduction,
       nin=2, infer=_infer_broadcast_loss("l1_loss"), decompose=_l1,
       attrs={"reduction": ("str", "mean")}, samples=_POINTWISE)


def _bce(x, t, *w, reduction):
    x = x.check_unit_interval(what="input")
    t = t.check_unit_interval(what="target")
    # PyTorch clamps each log at -100 so that a saturated prediction gives a finite loss.
    losses = -(t * x.log().clamp(min=-100) + (1 - t) * (1 - x).log().clamp(min=-100))
    return _reduce(losses * w[0] if w else losses, reduction)


_BCE_EPS = 9.999999960041972e-13  # PyTorch's EPSILON, 1e-12 as a float32 constant


def _bce_vjp(g, x, t, *rest, out, index, reduction):
    """PyTorch's rules, not the decomposition's (whose clamps of the logs at -100 would make
    NaN at x = 0 or 1, and cut the target's gradient at 100): the input's is
    g (x - t) / max(x (1 - x), 1e-12f), the target's g * -logit(x) (inf at 0 and 1)."""
    w = rest[0] if rest else None
    if index == 0:
        local = x.bce_input_grad(t)
    elif index == 1:
        local = -(x / (1 - x)).log()
    else:  # the weight's: the unweighted losses
        local = -(t * x.log().clamp(min=-100) + (1 - t) * (1 - x).log().clamp(min=-100))
    if w is not None and index != 2:
        local = local * w
    grad = g * local
    return grad / numel(x.shape) if reduction == "mean" else grad


def _bce_logits(x, t, *w, reduction):
    # -log_sigmoid(x) (PyTorch's formula) as softplus(-x): stable, and smooth at 0, where the
    # pieces of log1p(e^-|x|) + relu(-x) would each take a one-sided derivative (0 instead
    # of -1/2). No threshold: past it softplus is the identity, which drops e^-20 = 2e-9
    # (for x = -20.3 and t = sigmoid(x) the loss, 3.3e-8, was 5% off PyTorch's).
    log_sig_neg = (-x).softplus(beta=1.0, threshold=float("inf"))
    if len(w) > 1:
        losses = (1 - t) * x + ((w[1] - 1) * t + 1) * log_sig_neg
    else:
        losses = (1 - t) * x + log_sig_neg
    return _reduce(losses * w[0] if w else losses, reduction)


def _size(shape) -> str:
    return f"torch.Size({list(shape)})"


def _infer_bce(name, most):
    def infer(metas, reduction):
        _arity(name, metas, 2, most)
        _check_reduction(reduction)
        x, t = metas[0], metas[1]
        if x.shape != t.shape:  # PyTorch's Python-level checks (ValueError)
            raise OpError(
                f"Using a target size ({_size(t.shape)}) that is different to the input size "
                f"({_size(x.shape)}) is deprecated. Please ensure they have the same size."
                if name == "binary_cross_entropy" else
                f"Target size ({_size(t.shape)}) must be the same as input size "
                f"({_size(x.shape)})")
        dtype = x.dtype
        if name == "binary_cross_entropy":
            if t.dtype != x.dtype:
                raise OpError(f"Found dtype {torch_dtype_name(t.dtype)} but expected "
                              f"{torch_dtype_name(x.dtype)}")
            if x.dtype not in FLOATING:
                raise OpError(f'"binary_cross_entropy" not implemented for '
                              f"'{torch_dtype_name(x.dtype)}'")
        else:  # the loss is computed in the target's dtype
            if x.dtype not in FLOATING:
                raise OpError(f'"log_sigmoid_cpu" not implemented for '
                              f"'{torch_dtype_name(x.dtype)}'")
            if t.dtype == "bool":  # 1 - target (PyTorch's message: two bool tensors)
                refuse_bool_sub(("bool", "bool"))
            if t.dtype not in FLOATING:
                raise OpError(f"result type {torch_dtype_name(promote_types(x.dtype, t.dtype))}"
                              f" can't be cast to the desired output type "
                              f"{torch_dtype_name(t.dtype)}")
            dtype = t.dtype
        _weights_fit(x.shape, metas[2:])
        return Meta(x.shape if reduction == "none" else (), dtype)
    return infer


def _weights_fit(shape, weights) -> None:
    """weight and pos_weight broadcast *to* the input's shape, never beyond it: PyTorch
    multiplies them into the loss in place. (A (K, 1) weight over an (N,) input would
    otherwise make a K×N temporary from K + N numbers.)"""
    for w in weights:
        out = broadcast_shapes(tuple(shape), tuple(w.shape))
        if out != tuple(shape):
            raise OpError(f"output with shape {list(shape)} doesn't match the broadcast "
                          f"shape {list(out)}")


def _check_unit_forward(xp, x, what):
    # not (0 <= x <= 1): NaN fails too, as in PyTorch
    fail_if(xp, ~((x >= 0) & (x <= 1)), CheckedRuntimeError,
            f"all elements of {what} should be between 0 and 1")
    return x


# binary_cross_entropy's input and target, checked (values outside [0, 1] are an error).
define("check_unit_interval",
       batch=_batch.keep_attrs,
       infer=lambda metas, what: metas[0], forward=_check_unit_forward,
       vjp=lambda g, x, out, what: g, attrs={"what": ("str", "input")},
       samples=(S(_BCE_UNIT(3, 4)), S(_BCE_UNIT(0, 2), what="target")))


def _bce_input_grad_forward(xp, x, t):
    return (x - t) / xp.maximum((1 - x) * x, _BCE_EPS)


def _bce_input_grad_dx(g, x, t, out):
    """PyTorch's double backward of binary_cross_entropy, not the derivative of the formula
    above: (x^2 - 2xt + t) / ((x + eps)^2 (1 - x + eps)^2), eps = 1e-12 (a double)."""
    return g * (x * x - 2 * x * t + t) / ((x + 1e-12) ** 2 * (1 - x + 1e-12) ** 2)


# binary_cross_entropy's gradient with respect to its input, per element and unseeded: its
# own op so that its derivatives are PyTorch's (second order through the loss).
define("bce_input_grad",
       batch=_batch.all_batched(),
       nin=2, infer=lambda metas: metas[0], forward=_bce_input_grad_forward,
       vjp=(_bce_input_grad_dx,
            lambda g, x, t, out: -g / ((1 - x) * x).clamp(min=_BCE_EPS)),
       samples=(S(_BCE_P(3, 4), _BCE_P(3, 4), fd=False),
                S(X([1e-9, 0.3, 1 - 1e-9]), X([3.2e-5, 0.6, 0.2]), fd=False)))


def _bce_batch(site):
    """Input and target of one shape (unbatched ones expanded), reduced per slice; an
    unbatched weight (or pos_weight) broadcasts over the batch as over the slice's dims, a
    batched one maps per slice."""
    if any(site.batched[2:]):
        return None
    return _batch.with_reduction(site, _batch.all_batched(which=(0, 1)))


define("binary_cross_entropy",
       batch=_bce_batch,
       nin=-1, infer=_infer_bce("binary_cross_entropy", 3),
       variadic_rule=_bce_vjp, decompose=_bce, attrs={"reduction": ("str", "mean")},
       samples=(S(_BCE_P(3, 4), _BCE_P(3, 4), grad=(0, 1)),
                S(_BCE_P(5), _BCE_P(5), P(5), reduction="sum", grad=(0, 1)),
                S(_BCE_P(2, 3), _BCE_P(2, 3), reduction="none", grad=(0, 1))))
define("binary_cross_entropy_with_logits", batch=_bce_batch, nin=-1,
       infer=_infer_bce("binary_cross_entropy_with_logits", 4), decompose=_bce_logits,
       attrs={"reduction": ("str", "mean")},
       samples=(S(F(3, 4), _BCE_P(3, 4), grad=(0, 1)),
                S(X([0.0, -0.0, 1.5]), X([0.5, 0.2, 0.9]), grad=(0, 1)),  # smooth at 0
                S(F(5), _BCE_P(5), P(5), reduction="sum", grad=(0, 1)),
                S(F(2, 3), _BCE_P(2, 3), P(2, 3), P(3), reduction="none",
                  grad=(0, 1))))


def _class_dim(x):
    return 1 if x.ndim >= 2 else 0


def _infer_class_loss(name, probs_ok):
    def infer(metas, ignore_index, reduction, **attrs):
        _arity(name, metas, 2, 3)
        _check_reduction(reduction)
        x, t = metas[0], metas[1]
        if not x.shape:
            _zero_dim_class_loss(probs_ok, x, t)
        ls = attrs.get("label_smoothing", 0.0)
        if not 0.0 <= ls <= 1.0:
            raise OpError(f"label_smoothing must be between 0.0 and 1.0. Got: {ls}")
        c = 1 if len(x.shape) >= 2 else 0
        batch = x.shape[:c] + x.shape[c + 1:]
        probs = probs_ok and t.shape == x.shape  # class probabilities
        # cross_entropy's log_softmax runs first; over nothing it runs no kernel, so an
        # empty integer or bool input passes it (as in PyTorch)
        if probs_ok and x.dtype not in FLOATING and numel(x.shape):
            raise OpError('"log_softmax_lastdim_kernel_impl" not implemented for '
                          f"'{torch_dtype_name(x.dtype)}'")
        if probs:
            if t.dtype not in FLOATING:
                raise OpError("Expected floating point type for target with class "
                              f"probabilities, got {torch_dtype_name(t.dtype)}")
        else:
            _check_class_target(x, t, batch)
        if len(metas) == 3 and metas[2].shape != (x.shape[c],):
            raise OpError(f"weight tensor should be defined either for all {x.shape[c]} classes "
                          "or no classes")
        if not probs:  # nll_loss's kernel: the target's dtype, then the input's
            _check_target_dtype(t)
            if x.dtype not in FLOATING:
                kernel = "nll_loss_out_frame" if len(x.shape) <= 2 else \
                    "nll_loss2d_forward_out_frame"
                raise OpError(f'"{kernel}" not implemented for '
                              f"'{torch_dtype_name(x.dtype)}'")
        dtype = promote_types(x.dtype, t.dtype) if probs else x.dtype  # probabilities promote
        return Meta(batch if reduction == "none" else (), dtype)
    return infer


def _check_target_dtype(t):
    if t.dtype not in ("int64", "uint8"):
        raise OpError("expected target dtype to be Long or Byte, but got "
                      f"{torch_dtype_name(t.dtype)}")


def _check_class_target(x, t, batch):
    """The shape checks of PyTorch's nll_loss_nd and nll_loss, in its order."""
    if len(x.shape) > 1 and (t.shape[0] if t.shape else 0) != x.shape[0]:
        # a 0-d target counts as a batch of 0 there
        raise OpError(f"Expected input batch_size ({x.shape[0]}) to match target "
                      f"batch_size ({t.shape[0] if t.shape else 0}).")
    if len(x.shape) == 4:  # nll_loss2d's own checks
        if len(t.shape) != 3:
            raise OpError("only batches of spatial targets supported (3D tensors) but got "
                          f"targets of dimension: {len(t.shape)}")
        if t.shape != batch:
            raise OpError(f"size mismatch (got input: {list(x.shape)} , target: "
                          f"{list(t.shape)}")
    if len(x.shape) > 2 and not t.shape:  # nll_loss_nd's reshape of an empty batch
        raise OpError("ArrayRef: invalid slice, N = 1; size = 0")
    if len(x.shape) > 1 and not t.shape:  # nll_loss_nd reads t.size(0), after the dtype
        _check_target_dtype(t)
        raise OpError("Dimension specified as 0 but tensor has no dimensions")
    if len(x.shape) == 1 and len(t.shape) == 1 and t.shape[0] != 1:
        _check_target_dtype(t)  # a float target of another shape: PyTorch's dtype error first
        raise OpError("For 1D input, 1D target must have size 1, but got target size: "
                      f"{t.shape[0]}")
    if len(x.shape) <= 2 and len(t.shape) > 1:
        raise OpError("0D or 1D target tensor expected, multi-target not supported")
    if t.shape != batch and len(x.shape) > 2:
        raise OpError(f"Expected target size {list(batch)}, got {list(t.shape)}")


def _zero_dim_class_loss(probs_ok, x, t):
    """What PyTorch says about a 0-d input (nll_loss checks its dims; cross_entropy's
    log_softmax over dim 1, or its sum over it for probabilities, fails)."""
    if not probs_ok:
        raise OpError("Expected 1 or more dimensions (got 0)")
    if t.shape != x.shape:
        raise OpError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if t.dtype not in FLOATING:
        raise OpError("Expected floating point type for target with class probabilities, "
                      f"got {torch_dtype_name(t.dtype)}")
    raise OpError("Dimension specified as 1 but tensor has no dimensions")


def _class_weights(logp, t, w, c, ignore_index):
    """Per-element weight (0 where ignored) and the safe class index to pick."""
    valid = t != ignore_index
    safe = valid.where(t, 0)
    wt = valid.cast(dtype=logp.dtype)
    if w:
        wt = wt * w[0].index(safe, key="T")
    return safe, wt


def _pick(logp, t, c, ignore_index):
    """logp at each target's class (0 where the target is ignored): a one-hot mask and a
    sum over the class dim. Elementwise work that fuses into one kernel on a GPU, where a
    gather and its backward's scatter cost an order of magnitude more per call."""
    n = logp.shape[c]
    classes = logp.source("arange", end=n).reshape(shape=(n,) + (1,) * (logp.ndim - c - 1))
    hit = t.unsqueeze(dim=c) == classes  # an ignore_index outside [0, n) hits no class
    if 0 <= ignore_index < n:
        hit = hit & (t != ignore_index).unsqueeze(dim=c)
    return hit.where(logp, 0.0).sum(dim=c)


def _reduce_kept(losses, t, ignore_index, reduction):
    """Per-target losses (0 where ignored) reduced as PyTorch does: a mean is over the
    targets that are not ignore_index."""
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total / (t != ignore_index).sum()


def _nll(logp, t, *w, ignore_index, reduction):
    c = _class_dim(logp)
    if logp.ndim == 1 and t.ndim == 1:  # one sample's target given as a 1-element vector
        t = t.reshape(shape=())
    t = t.check_targets(classes=logp.shape[c], ignore_index=ignore_index)
    picked = _pick(logp, t, c, ignore_index)
    if not w:
        loss = _reduce_kept(-picked, t, ignore_index, reduction)
    else:
        _, wt = _class_weights(logp, t, w, c, ignore_index)
        loss = _reduce(-picked * wt, reduction, wt.sum())
    # PyTorch's kernel for one sample accumulates (0 - x[t]): a zero loss is +0.0
    return loss + 0.0 if logp.ndim == 1 and reduction == "none" else loss


def _cross_entropy(x, t, *w, ignore_index, reduction, label_smoothing):
    if x.ndim == 2 and t.dtype in INTEGRAL and not w and not label_smoothing:
        # The common case (a batch of logits, class indices): one op per row instead of
        # log_softmax, a pick and their gradients (one kernel each way on a GPU).
        rows = x.cross_entropy_rows(t, ignore_index=ignore_index)
        return _reduce_kept(rows, t, ignore_index, reduction)
    c = _class_dim(x)
    logp = x.log_softmax(dim=c)
    n_classes = x.shape[c]
    w_b = None
    if w:
        w_b = w[0].reshape(shape=(n_classes,) + (1,) * (x.ndim - c - 1))
    if t.dtype in FLOATING:  # class probabilities
        tt = t * (1 - label_smoothing) + label_smoothing / n_classes if label_smoothing else t
        terms = logp * tt if w_b is None else logp * tt * w_b
        if reduction == "none":
            return -terms.sum(dim=c)
        # PyTorch's order, -(sum) / rows: a zero loss is -0.0 (the sum of +0.0 terms, negated);
        # the mean is over numel / C rows: with no classes that is 0 / 0, NaN (PyTorch's)
        total = -terms.sum()
        rows = numel(x.shape) // n_classes if n_classes else float("nan")
        return total if reduction == "sum" else total / rows
    nll = _nll(logp, t, *w, ignore_index=ignore_index, reduction=reduction)
    if not label_smoothing:
        return nll
    safe, wt = _class_weights(logp, t, w, c, ignore_index)
    smooth = -(logp if w_b is None else logp * w_b).sum(dim=c)
    smooth = (t != ignore_index).where(smooth, 0.0)
    smooth = _reduce(smooth, reduction, wt.sum())
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


# --- cross_entropy_rows: the loss of each row of logits x (N, C) against class indices ----
def _infer_ce_rows(metas, ignore_index):
    x, t = metas
    if len(x.shape) != 2 or x.dtype not in FLOATING or t.dtype not in INTEGRAL \
            or t.shape != x.shape[:1]:
        raise OpError(f"cross_entropy_rows: expected float logits (N, C) and integer targets "
                      f"(N,), got {x.dtype}{list(x.shape)} and {t.dtype}{list(t.shape)}")
    return Meta(x.shape[:1], x.dtype)


def _ce_rows_numpy(xp, x, t, ignore_index, g=None):
    """The array-module form of ce_rows (see _special): softmax, a one-hot, their use."""
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)[:, None]
    if g is None:  # PyTorch's -logp[t] (-0.0 of one class's logp 0.0), +0.0 where ignored
        if not x.shape[1]:  # no class to pick (every row ignored, or the check fails)
            return xp.zeros(x.shape[:1], x.dtype)
        # a target out of range is the check's to report (deferred on a device): clipped
        # here so that the pick itself cannot fail first with another error
        at = xp.clip(safe, 0, x.shape[1] - 1)
        picked = xp.take_along_axis(_log_softmax_forward(xp, x, 1), at, axis=1)[:, 0]
        return xp.where(valid, -picked, 0).astype(x.dtype, copy=False)
    onehot = xp.arange(x.shape[1]) == safe
    p = xp.exp(_log_softmax_forward(xp, x, 1))
    return ((p - onehot) * xp.where(valid, g, 0)[:, None]).astype(x.dtype, copy=False)


def _target_message(t, bad):
    return lambda: f"Target {int(t[bad].ravel()[0])} is out of bounds."


def targets_within(xp, t, classes: int, ignore_index: int) -> None:
    """Class indices in [0, classes), or ignore_index: PyTorch's IndexError otherwise (a
    one-hot pick, or a device kernel, would quietly give a wrong loss)."""
    if t.size and not (xp.__name__ == "numpy" and targets_ok(t, classes)):
        bad = ((t < 0) | (t >= classes)) & (t != ignore_index)
        fail_if(xp, bad, IndexError, _target_message(t, bad))


def _check_targets_forward(xp, t, classes, ignore_index):
    targets_within(xp, t, classes, ignore_index)
    return t


def _infer_check_targets(metas, classes, ignore_index):
    t = metas[0]
    if t.dtype not in INTEGRAL:
        raise OpError(f"expected scalar type Long but found {torch_dtype_name(t.dtype)}")
    return t


# The class losses' targets, checked (the composites pick with a one-hot mask).
define("check_targets",
       batch=_batch.keep_attrs,
       infer=_infer_check_targets, forward=_check_targets_forward, vjp=(None,),
       attrs={"classes": ("int", REQUIRED), "ignore_index": ("int", -100)},
       samples=(S(I((5,), 4), classes=4), S(I((2, 3), 3, low=-1), classes=3,
                                               ignore_index=-1),
                S(I((0,), 2), classes=2)))


def _ce_rows_forward(xp, x, t, ignore_index):
    if host_applies(xp, x) and targets_ok(t, x.shape[1]):  # every target a class
        return ce_rows_host(x, t, ignore_index, all_classes=True)
    targets_within(xp, t, x.shape[1], ignore_index)
    if ce_rows_apply(xp, x):
        return ce_rows(xp, x, t, ignore_index)
    if host_applies(xp, x):
        return ce_rows_host(x, t, ignore_index)
    return _ce_rows_numpy(xp, x, t, ignore_index)


def _ce_rows_bw_forward(xp, g, x, t, ignore_index):
    if host_applies(xp, x) and targets_ok(t, x.shape[1]):
        return ce_rows_backward_host(g, x, t, ignore_index, all_classes=True)
    targets_within(xp, t, x.shape[1], ignore_index)
    if ce_rows_apply(xp, x):
        return ce_rows(xp, x, t, ignore_index, g)
    if host_applies(xp, x):
        return ce_rows_backward_host(g, x, t, ignore_index)
    return _ce_rows_numpy(xp, x, t, ignore_index, g)


def _infer_ce_rows_bw(metas, ignore_index):
    g, x, t = metas
    if _infer_ce_rows([x, t], ignore_index) != Meta(g.shape, g.dtype):
        raise OpError(f"cross_entropy_rows_backward: gradient {g.dtype}{list(g.shape)} does "
                      f"not match the rows of {x.dtype}{list(x.shape)}")
    return Meta(x.shape, x.dtype)


def _ce_bw_g(h, g, x, t, out, ignore_index):
    """out is linear in g: out = g[:, None] * D(x, t), so d<h, out>/dg = rowsum(h * D)."""
    unit = g.full_like(1.0).cross_entropy_rows_backward(x, t, ignore_index=ignore_index)
    return (h * unit).sum(dim=1)


def _ce_bw_x(h, g, x, t, out, ignore_index):
    """d out[i, j] / d x[i, k] = g_i p_ij (delta_jk - p_ik) on kept rows (p = softmax)."""
    p = x.softmax(dim=1)
    hp = h * p
    kept = g * (t != ignore_index).cast(dtype=g.dtype)
    return (hp - p * hp.sum(dim=1, keepdim=True)) * kept.unsqueeze(dim=1)


_IGNORED = I((5,), 4, low=-1)  # some targets are the ignore_index -1
_ROWS_SAMPLES = (S(F(5, 4), I((5,), 4), grad=(0,)), S(F(5, 4), _IGNORED, ignore_index=-1,
                                                     grad=(0,)),
                 S(F(6, 3), I((6,), 3), ignore_index=1, grad=(0,)), S(F(0, 3), I((0,), 3)))
define("cross_entropy_rows",
       batch=_batch_nn.rows,
       nin=2, infer=_infer_ce_rows, forward=_ce_rows_forward,
       vjp=(lambda g, x, t, out, ignore_index:
            g.cross_entropy_rows_backward(x, t, ignore_index=ignore_index), None),
       attrs={"ignore_index": ("int", -100)}, samples=_ROWS_SAMPLES)
define("cross_entropy_rows_backward",
       batch=_batch_nn.rows,
       nin=3, infer=_infer_ce_rows_bw, forward=_ce_rows_bw_forward,
       vjp=(_ce_bw_g, _ce_bw_x, None), attrs={"ignore_index": ("int", -100)},
       samples=(S(F(5), F(5, 4), I((5,), 4), grad=(0, 1)),
                S(F(5), F(5, 4), _IGNORED, ignore_index=-1, grad=(0, 1)),
                S(F(0), F(0, 3), I((0,), 3))))

_CLASS = {"ignore_index": ("int", -100), "reduction": ("str", "mean")}
define("nll_loss",
       batch=_batch_nn.class_loss,
       nin=-1, infer=_infer_class_loss("nll_loss", False), decompose=_nll,
       attrs=dict(_CLASS),
       samples=(S(F(5, 4), I((5,), 4), grad=(0,)),
                S(F(5, 4), I((5,), 4), P(4), reduction="sum", grad=(0,)),
                S(F(2, 3, 4), I((2, 4), 3), reduction="none", grad=(0,)),
                S(F(4), I((), 4), grad=(0,)),
                S(F(5, 4), _IGNORED, ignore_index=-1, grad=(0,)),
                S(F(6, 3), I((6,), 3), ignore_index=1, reduction="none", grad=(0,)),
                S(F(6, 3), I((6,), 3), P(3), ignore_index=2, grad=(0,))))
define("cross_entropy",
       batch=_batch_nn.class_loss,
       nin=-1, infer=_infer_class_loss("cross_entropy", True),
       decompose=_cross_entropy, attrs={**_CLASS, "label_smoothing": ("float", 0.0)},
       samples=(S(F(5, 4), I((5,), 4), grad=(0,)),
                S(F(5, 4), I((5,), 4), P(4), grad=(0,)),
                S(F(5, 4), _IGNORED, ignore_index=-1, label_smoothing=0.2, grad=(0,)),
                S(F(5, 4), I((5,), 4), P(4), label_smoothing=0.1, reduction="sum",
                  grad=(0,)),
                S(F(2, 3, 4), I((2, 4), 3), reduction="none", grad=(0,)),
                S(F(5, 4), P(5, 4), grad=(0, 1)),
                S(F(5, 4), P(5, 4), P(4), label_smoothing=0.3, grad=(0, 1)),
                S(F(4), I((), 4), grad=(0,))))
