"""remotegrad.nn.functional: PyTorch's functional NN API over the op catalog.

Every function records catalog ops; dropout draws its mask on the client (a graph stays
pure: the same request gives the same answer on any worker). A function whose op the
catalog lacks raises NotImplementedError naming it.
"""

from __future__ import annotations

import builtins

import numpy as np
from remotegrad.proto import catalog
from remotegrad.proto.catalog._types import torch_dtype_name

from .. import _creation, _dtypes
from .._grad_mode import is_grad_enabled
from .._tensor import Tensor, _edge, apply
from .._warn import warn_user
from ._functional_activations import (celu, hardsigmoid, hardswish, logsigmoid, mish, selu,
                                      softsign, tanhshrink)

__all__ = [
    "avg_pool2d", "batch_norm", "cosine_similarity", "scaled_dot_product_attention",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv2d",
    "cross_entropy", "dropout", "elu", "embedding", "gelu", "huber_loss", "kl_div", "l1_loss",
    "layer_norm",
    "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "normalize",
    "one_hot", "pad", "relu", "relu6", "sigmoid", "silu", "smooth_l1_loss", "softmax",
    "softplus", "tanh",
    "celu", "hardsigmoid", "hardswish", "logsigmoid", "mish", "selu", "softsign", "tanhshrink",
]


def _op(name: str, *operands, torch_name: str | None = None, **attrs) -> Tensor:
    if name not in catalog.CATALOG:
        raise NotImplementedError(f"nn.functional: the op catalog has no '{name}' yet")
    return apply(name, *operands, torch_name=torch_name, **attrs)


def _inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if not inplace:
        return out
    input._check_inplace()
    return input._assign(out)


def _reduction(size_average, reduce, reduction: str) -> str:
    """The reduction a loss applies (PyTorch's _Reduction: the legacy arguments win, with
    their warning; else the name, checked here with PyTorch's ValueError)."""
    if size_average is None and reduce is None:
        _check_reduction(reduction)
        return reduction
    if reduce is False:
        out = "none"
    else:
        out = "sum" if size_average is False else "mean"
    warn_user(f"size_average and reduce args will be deprecated, please use reduction='{out}' "
              "instead.")
    return out


def _present(*tensors) -> list[Tensor]:
    return [t for t in tensors if t is not None]


# --- linear and activations -------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    if weight.dim() == 1:  # a vector of weights: PyTorch's input @ weight (dot, mv)
        out = input.matmul(weight)
        return out if bias is None else out + bias
    if input.dtype.name == weight.dtype.name == "bool":  # PyTorch's addmm has no bool kernel
        raise NotImplementedError('"addmm_impl_cpu_" not implemented for \'Bool\'')
    if input.dim() == 2:
        name = "AddmmBackward0" if bias is not None else "MmBackward0"
    elif bias is not None:  # addmm over the input as a matrix, viewed back
        name = "ViewBackward0"
    else:  # PyTorch's matmul of a vector (squeezed back) or of a batch
        name = "SqueezeBackward4" if input.dim() == 1 else "UnsafeViewBackward0"
    return _op("linear", *_present(input, weight, bias), torch_name=name)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("relu", input), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    # hardtanh(0, 6): integer inputs keep their dtype, bool has no kernel
    if input.dtype.name == "bool":
        raise RuntimeError("Bool inputs not supported for hardtanh")
    if not input.dtype.is_floating_point:
        return _inplace(input, _op("clamp", input, min=0, max=6,
                                   torch_name="HardtanhBackward0"), inplace)
    # Not clamp's rule: PyTorch's hardtanh_backward passes the gradient only strictly inside
    # (0, 6) (none at either bound), and depends on the input, so a gradient made with
    # create_graph requires grad. relu (threshold_backward: none at 0) under a where at 6
    # gives both, with clamp's values (-0.0 and NaN kept). Recorded as one node over input.
    out = _op("where", input >= 6.0, 6.0, _op("relu", input), torch_name="HardtanhBackward0")
    if out.grad_fn is not None:
        out.grad_fn.next_functions = ((_edge(input), 0),)
    return _inplace(input, out, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    # PyTorch's in-place form has a derivative of its own (of the result): ...Backward1
    return _inplace(input, _op("leaky_relu", input, negative_slope=builtins.float(
        negative_slope), torch_name="LeakyReluBackward1" if inplace else None), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("elu", input, alpha=builtins.float(alpha),
                               torch_name="EluBackward1" if inplace else None), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    return _op("gelu", input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, _op("silu", input), inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _op("softplus", input, beta=builtins.float(beta),
               threshold=builtins.float(threshold))


def sigmoid(input: Tensor) -> Tensor:
    return _op("sigmoid", input)


def tanh(input: Tensor) -> Tensor:
    return _op("tanh", input)


def _softmax_dim(input: Tensor, dim) -> int:
    if dim is None:  # PyTorch's legacy implicit choice (with a warning there)
        return 0 if input.dim() in (0, 1, 3) else 1
    return builtins.int(dim)


def softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return _op("softmax", x, dim=_softmax_dim(input, dim))


def log_softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return _op("log_softmax", x, dim=_softmax_dim(input, dim))


# --- layers ------------------------------------------------------------------------------
def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    keep = _creation.rng().random(tuple(input.shape)) >= p
    mask = Tensor._from_array(keep)
    out = _op("dropout", input, mask, p=builtins.float(p), training=True)
    return _inplace(input, out, inplace)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, builtins.int) else tuple(
        normalized_shape)
    return _op("layer_norm", *_present(input, weight, bias), normalized_shape=shape,
               eps=builtins.float(eps))


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm=None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not "
                                  "supported by remotegrad")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _op("embedding", input, weight, padding_idx=padding_idx)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    return _op("pad", input, pad=tuple(builtins.int(p) for p in pad), mode=mode,
               value=builtins.float(value or 0.0))


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, builtins.int) else tuple(v)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    return _op("conv2d", *_present(input, weight, bias), stride=_pair(stride),
               padding=padding if isinstance(padding, str) else _pair(padding),
               dilation=_pair(dilation), groups=groups)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    return _op("max_pool2d", input, kernel_size=_pair(kernel_size),
               stride=_pair(stride if stride is not None else kernel_size),
               padding=_pair(padding), dilation=_pair(dilation), ceil_mode=ceil_mode)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    return _op("avg_pool2d", input, kernel_size=_pair(kernel_size),
               stride=_pair(stride if stride is not None else kernel_size),
               padding=_pair(padding), ceil_mode=ceil_mode,
               count_include_pad=count_include_pad)


# --- losses ------------------------------------------------------------------------------
def _warn_broadcast(input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warn_user(f"Using a target size ({target.size()}) that is different to the input size "
                  f"({input.size()}). This will likely lead to incorrect results due to "
                  "broadcasting. Please ensure they have the same size.")


def _check_broadcast(input: Tensor, target: Tensor) -> None:
    """PyTorch broadcasts mse_loss's and l1_loss's operands before it reads the reduction:
    shapes that do not broadcast fail first."""
    try:
        catalog.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    except catalog.OpError as e:
        raise RuntimeError(str(e)) from None


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight=None) -> Tensor:
    _warn_broadcast(input, target)
    _check_broadcast(input, target)
    return _op("mse_loss", input, target,
               reduction=_reduction(size_average, reduce, reduction))


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean") -> Tensor:
    _warn_broadcast(input, target)
    _check_broadcast(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    # PyTorch composes l1_loss of sub, abs and a reduction, recorded here the same way: its
    # nodes, what they save (abs the difference, not an operand: an in-place change of the
    # input after it is no error) and their second-backward errors are PyTorch's.
    # PyTorch's F.l1_loss broadcasts the two first (broadcast_tensors): an operand it
    # expands has dims then, so a 0-d float64 input and a float32 target subtract in float64
    shape = catalog.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    input, target = (t if tuple(t.shape) == shape else t.expand(shape) for t in (input, target))
    losses = (input - target).abs()
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" \
        else losses


def _weight_without_grad(function: str, **weights: Tensor | None) -> None:
    """PyTorch's kernels have no derivative for a loss's weights: a weight that requires
    grad is refused at the call (under grad mode)."""
    for name, value in weights.items():
        if value is not None and value.requires_grad and is_grad_enabled():
            raise RuntimeError(f"The function '{function}' is not differentiable with respect "
                               f"to argument '{name}'. This input cannot have requires_grad "
                               "True.")


def _same_size(input: Tensor, target: Tensor, message: str) -> None:
    """PyTorch's F.binary_cross_entropy(_with_logits) compare the sizes in Python, before
    any op runs: a size mismatch is its ValueError ahead of the kernels' refusals (a
    modified no_grad view, a weight that requires grad)."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(message.format(t=target.size(), x=input.size()))


def _weight_broadcasts(target: Tensor, weight: Tensor | None) -> None:
    """F.binary_cross_entropy broadcasts the weight to the target's size in Python
    (torch.broadcast_shapes), before any op runs, with that function's message."""
    if weight is None:
        return
    shapes = (tuple(target.shape), tuple(weight.shape))
    common = [1] * builtins.max(len(a) for a in shapes)
    for index, shape in enumerate(shapes):
        for d in range(-1, -1 - len(shape), -1):
            if common[d] == 1:
                common[d] = shape[d]
            elif shape[d] != 1 and shape[d] != common[d]:
                given = (target, weight)[index].size()
                raise RuntimeError(f"Attempting to broadcast a dimension of length {shape[d]} "
                                   f"at {d}! Mismatching argument at index {index} had "
                                   f"{given}; but expected shape should be broadcastable to "
                                   f"{common}")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    _same_size(input, target, "Using a target size ({t}) that is different to the input size "
               "({x}) is deprecated. Please ensure they have the same size.")
    _weight_broadcasts(target, weight)
    _weight_without_grad("binary_cross_entropy", weight=weight)
    return _op("binary_cross_entropy", *_present(input, target, weight), reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    _same_size(input, target, "Target size ({t}) must be the same as input size ({x})")
    _weight_without_grad("binary_cross_entropy_with_logits", weight=weight,
                         pos_weight=pos_weight)
    if pos_weight is not None and weight is None:
        # the catalog op's pos_weight is its 4th operand: a weight of one holds the 3rd
        weight = _creation.ones((), dtype=pos_weight.dtype)
    return _op("binary_cross_entropy_with_logits", *_present(input, target, weight, pos_weight),
               reduction=reduction)


def _class_loss_name(input: Tensor, reduction: str) -> str:
    """PyTorch's grad_fn for a loss over class indices: inputs beyond (N, C) go through
    its 2-d kernel, viewed to 4-d and, for unreduced losses of other ranks, back."""
    if input.dim() <= 2:
        return "NllLossBackward0"
    if reduction == "none" and input.dim() != 4:
        return "ViewBackward0"
    return "NllLoss2DBackward0"


def _nll_kernel(input: Tensor) -> str:
    """The kernel PyTorch's nll_loss_nd runs: inputs beyond (N, C) are viewed to 4-d."""
    return "nll_loss_forward" if input.dim() <= 2 else "nll_loss2d_forward"


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    _weight_without_grad(_nll_kernel(input), weight=weight)
    return _op("nll_loss", *_present(input, target, weight), ignore_index=ignore_index,
               reduction=reduction, torch_name=_class_loss_name(input, reduction))


def _probabilities_floating(input: Tensor, target: Tensor) -> None:
    """PyTorch's cross_entropy reads a target of the input's size as class probabilities
    and checks its dtype before its log_softmax is recorded (so ahead of that op's
    refusals). Integer and 0-d inputs keep the catalog's order of errors."""
    if (input.dim() and input.is_floating_point() and not target.is_floating_point()
            and tuple(target.shape) == tuple(input.shape)):
        raise RuntimeError("Expected floating point type for target with class probabilities, "
                           f"got {torch_dtype_name(target._node.meta.dtype)}")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    _probabilities_floating(input, target)
    name = _class_loss_name(input, reduction)
    if target.is_floating_point():  # probabilities: PyTorch's -(x * t).sum(c), then / n
        name = "DivBackward1" if reduction == "mean" and input.numel() else "NegBackward0"
    elif label_smoothing > 0:  # PyTorch's: (1 - e) * nll + e * smooth, its last op an add
        name = "AddBackward0"
    if not target.is_floating_point():
        _weight_without_grad(_nll_kernel(input), weight=weight)
    return _op("cross_entropy", *_present(input, target, weight), ignore_index=ignore_index,
               reduction=reduction, label_smoothing=builtins.float(label_smoothing),
               torch_name=name)


# --- composed on the client -----------------------------------------------------------------
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    from ._norm import batch_norm as composed
    return composed(input, running_mean, running_var, weight, bias, training, momentum, eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    # As PyTorch computes it: broadcast first (a norm over the smaller operand's dim would
    # be a different number), each operand divided by its own norm, clamped at eps.
    try:
        shape = catalog.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except catalog.OpError as e:
        raise RuntimeError(str(e)) from None
    # PyTorch's promote_types (no priority for dims): 0-d float64 with float32 is float64
    common = catalog.promote_types(x1._node.meta.dtype, x2._node.meta.dtype)
    if common not in catalog.FLOATING:
        raise RuntimeError("expected common dtype to be floating point, yet common dtype is "
                           f"{torch_dtype_name(common)}")
    x1, x2 = (x if x.dtype.name == common else x.to(getattr(_dtypes, common))
              for x in (x1, x2))
    # PyTorch's expand_outplace: an operand of the broadcast shape already is not expanded
    x1, x2 = (x if tuple(x.shape) == shape else x.expand(*shape) for x in (x1, x2))
    u1 = x1 / x1.norm(dim=dim, keepdim=True).clamp(min=eps)
    u2 = x2 / x2.norm(dim=dim, keepdim=True).clamp(min=eps)
    return (u1 * u2).sum(dim)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    import math
    length, source = query.shape[-2], key.shape[-2]
    factor = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * factor
    if is_causal:
        keep = np.tril(np.ones((length, source), dtype=bool))
        scores = _where_keep(scores, keep)
    if attn_mask is not None:
        if attn_mask.dtype.name == "bool":
            scores = _where_keep(scores, attn_mask)
        else:
            scores = scores + attn_mask
    weights = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ value


def _where_keep(scores: Tensor, keep) -> Tensor:
    mask = keep if isinstance(keep, Tensor) else Tensor._from_array(keep)
    return apply("where", mask, scores, float("-inf"))

def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    if num_classes < 0:
        num_classes = builtins.int(tensor.max().item()) + 1
    classes = Tensor._from_array(np.arange(num_classes, dtype=np.int64))
    return (tensor.unsqueeze(-1) == classes).long()


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    denom = input.norm(p, dim, keepdim=True).clamp(min=eps).expand_as(input)
    return input / denom


# --- losses composed on the client (catalog candidates: smooth_l1_loss, huber_loss, xlogy) ---
_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str, valid=_REDUCTIONS) -> None:
    if reduction not in valid:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _broadcast_pair(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """torch.broadcast_tensors of the two, with its error for shapes that do not agree."""
    try:
        shape = catalog.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    except catalog.OpError as e:
        raise RuntimeError(str(e)) from None
    # (an operand of that shape already is not expanded: PyTorch's expand_outplace)
    return tuple(t if tuple(t.shape) == shape else t.expand(*shape) for t in (input, target))


def _reduce(loss: Tensor, reduction: str, name: str | None = None) -> Tensor:
    """The last op of a composed loss carries PyTorch's grad_fn name for the fused kernel."""
    if reduction == "none":
        return loss
    return apply(reduction, loss, torch_name=name)


def _floating(input: Tensor, target: Tensor) -> tuple[bool, str]:
    common = catalog.promote_types(input._node.meta.dtype, target._node.meta.dtype)
    return common in catalog.FLOATING, common


def _piecewise(input: Tensor, target: Tensor, bound: float, reduction: str, name: str,
               huber: bool) -> Tensor:
    """Smooth L1 (huber=False) and Huber loss, in the order of arithmetic of PyTorch's
    kernels: |d| < b ? 0.5*d*d/b : |d| - 0.5*b, and |d| < b ? 0.5*d*d : b*(|d| - 0.5*b)."""
    floating, common = _floating(input, target)
    if not floating:  # PyTorch has no integer kernel for these
        kernel = "huber_cpu" if huber else "smooth_l1_cpu"
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{torch_dtype_name(common)}'")
    d = input - target
    z = d.abs()
    # the quadratic branch reads d only where it applies (PyTorch's backward: its formula
    # where not |d| >= b, NaN included): beside an infinite d its zero cotangent met inf
    q = d.masked_fill(z >= bound, 0.0)
    inner = 0.5 * q * q if huber else 0.5 * q * q / bound
    outer = bound * (z - 0.5 * bound) if huber else z - 0.5 * bound
    loss = apply("where", z < bound, inner, outer,
                 torch_name=name if reduction == "none" else None)
    return _reduce(loss, reduction, name)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    _warn_broadcast(input, target)
    input, target = _broadcast_pair(input, target)  # (before the reduction is read)
    reduction = _reduction(size_average, reduce, reduction)
    if beta == 0.0:  # PyTorch takes l1_loss here
        return l1_loss(input, target, reduction=reduction)
    _check_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    return _piecewise(input, target, beta, reduction, "SmoothL1LossBackward0", False)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    _warn_broadcast(input, target)
    input, target = _broadcast_pair(input, target)
    _check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    if weight is None:
        return _piecewise(input, target, delta, reduction, "HuberLossBackward0", True)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    loss = _piecewise(input, target, delta, "none", "HuberLossBackward0", True)
    return _reduce(loss * weight, reduction)


def _xlogx(t: Tensor) -> Tensor:
    # 0 where t is 0 (xlogy's convention), written so that no log(0) enters the graph:
    # where's unchosen branch would still carry 0 * -inf = NaN into the gradient.
    safe = apply("where", t == 0, 1.0, t)
    return t * safe.log()


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warn_user("reduction: 'mean' divides the total loss by both the batch size and the "
                  "support size.'batchmean' divides only by the batch size, and aligns with "
                  "the KL div math definition.'mean' will be changed to behave the same as "
                  "'batchmean' in the next major release.")
    _check_reduction(reduction, _REDUCTIONS + ("batchmean",))
    if not (input.is_floating_point() and target.is_floating_point()):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = _xlogx(target) - target * input
    if reduction != "batchmean":
        return _reduce(loss, reduction)
    total = loss.sum()
    return total / input.shape[0] if input.dim() != 0 else total
