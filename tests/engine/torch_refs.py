"""PyTorch reference for each catalog op: ref(torch_inputs, attrs) -> tensor.

Most ops are `torch.nn.functional.<name>` or `torch.<name>` called with the catalog's
attributes as keyword arguments (the catalog keeps PyTorch's names); the table below
holds the ones that differ in calling convention only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from remotegrad.proto.catalog.indexing import parse_key


def _tensor(a):
    return torch.is_tensor(a)


def _binary(fn, op):
    def ref(a, b, **kw):
        if _tensor(a):
            return fn(a, b, **kw)
        return op(a, b)  # a Python number first: PyTorch's operator path
    return ref


def _index_key(tensors, key):
    out, it = [], iter(tensors)
    for item in parse_key(key):
        kind = item[0]
        out.append({"none": None, "ellipsis": Ellipsis}.get(kind) if kind in ("none", "ellipsis")
                   else next(it) if kind == "tensor" else item[1])
    return tuple(out)


def _index_backward(g, *t, key, mask_counts, shape, accumulate=True):
    if not accumulate:  # setitem's placement: x[key] = g into zeros
        z = torch.zeros(shape, dtype=g.dtype)
        z[_index_key(t, key)] = g
        return z
    z = torch.zeros(shape, dtype=g.dtype, requires_grad=True)
    (out,) = torch.autograd.grad(z[_index_key(t, key)], z, g, create_graph=True)
    return out


def _pad_backward(g, pad, mode, shape):
    z = torch.zeros(shape, dtype=g.dtype, requires_grad=True)
    (out,) = torch.autograd.grad(F.pad(z, pad, mode=mode), z, g, create_graph=True)
    return out


def _pool_backward(g, x, **a):
    xx = x.detach().requires_grad_(True)
    y = F.max_pool2d(xx, **_pool_kw(a))
    (out,) = torch.autograd.grad(y, xx, g, create_graph=True)
    return out


def _pool_select(h, x, **a):
    _, idx = F.max_pool2d(x, **_pool_kw(a), return_indices=True)
    return h.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)


def _pool_kw(a):
    return {k: v for k, v in a.items()}


def _dim_or_all(fn):
    def ref(x, dim=None, keepdim=False, **kw):
        if dim is None:  # PyTorch's full reduction takes no keepdim: reshape by hand
            out = fn(x, **kw)
            return out.reshape((1,) * x.ndim) if keepdim else out
        return fn(x, dim=dim, keepdim=keepdim, **kw)
    return ref


def _max(fn):
    def ref(x, dim=None, keepdim=False):
        return fn(x) if dim is None else fn(x, dim, keepdim).values
    return ref


def _amax(fn):
    def ref(x, dim=None, keepdim=False):
        return fn(x, dim=() if dim is None else dim, keepdim=keepdim)
    return ref


def _bce_logits(x, t, *w, reduction):
    return F.binary_cross_entropy_with_logits(x, t, w[0] if w else None, reduction=reduction,
                                              pos_weight=w[1] if len(w) > 1 else None)


def _ce_rows_backward(g, x, t, ignore_index):
    """The gradient of per-row cross-entropy, as PyTorch's autograd gives it (with a graph,
    so that it can be differentiated again)."""
    xs = x if x.requires_grad else x.detach().requires_grad_(True)
    rows = F.cross_entropy(xs, t, ignore_index=ignore_index, reduction="none")
    (gx,) = torch.autograd.grad(rows, xs, g, create_graph=True)
    return gx


REFS = {
    "add": _binary(torch.add, lambda a, b: a + b),
    "sub": _binary(torch.sub, lambda a, b: a - b),
    "mul": _binary(torch.mul, lambda a, b: a * b),
    "div": _binary(torch.div, lambda a, b: a / b),
    "pow": _binary(torch.pow, lambda a, b: a ** b),
    "cast": lambda x, dtype: x.to(getattr(torch, dtype)),
    "arange": lambda end, dtype: torch.arange(end, dtype=getattr(torch, dtype)),
    "reshape": lambda x, shape: x.reshape(shape),
    "expand": lambda x, shape: x.expand(shape),
    "sum_to": lambda x, shape: x.sum_to_size(shape),
    "sum": _dim_or_all(torch.sum),
    "mean": _dim_or_all(torch.mean),
    "prod": _dim_or_all(torch.prod),
    "max": _max(torch.max),
    "min": _max(torch.min),
    "amax": _amax(torch.amax),
    "amin": _amax(torch.amin),
    "norm": lambda x, p, dim, keepdim: torch.linalg.vector_norm(x, p, dim, keepdim),
    "einsum": lambda *ops, equation: torch.einsum(equation, *ops),
    "squeeze": lambda x, dim: x.squeeze() if dim is None else x.squeeze(dim),
    "repeat": lambda x, repeats: x.repeat(repeats),
    "cat": lambda *xs, dim: torch.cat(xs, dim),
    "stack": lambda *xs, dim: torch.stack(xs, dim),
    "split": lambda x, split_size_or_sections, dim, index:
        torch.split(x, split_size_or_sections if isinstance(split_size_or_sections, int)
                    else list(split_size_or_sections), dim)[index],
    "chunk": lambda x, chunks, dim, index: torch.chunk(x, chunks, dim)[index],
    "index": lambda x, *t, key, mask_counts: x[_index_key(t, key)],
    "index_backward": _index_backward,
    "pad_backward": _pad_backward,
    "index_select": lambda x, i, dim: torch.index_select(x, dim, i),
    "index_add": lambda x, i, s, dim, alpha: torch.index_add(x, dim, i, s, alpha=alpha),
    "gather": lambda x, i, dim: torch.gather(x, dim, i),
    "scatter_add": lambda x, i, s, dim: torch.scatter_add(x, dim, i, s),
    "scatter": lambda x, i, *s, dim, value: torch.scatter(x, dim, i, s[0]) if s
    else torch.scatter(x, dim, i, value),
    "cross_entropy_rows": lambda x, t, ignore_index:
        F.cross_entropy(x, t, ignore_index=ignore_index, reduction="none"),
    "cross_entropy_rows_backward": _ce_rows_backward,
    "check_targets": lambda t, classes, ignore_index: t,  # PyTorch checks inside its losses
    "check_unit_interval": lambda x, what: x,  # binary_cross_entropy's check, ditto
    "tanh_backward": lambda g, y: torch.ops.aten.tanh_backward(g, y),
    "leaky_relu_backward": lambda g, x, negative_slope: torch.ops.aten.leaky_relu_backward(
        g, x, negative_slope, False),
    "polygamma": lambda x, n: torch.polygamma(n, x),
    "threshold_backward": lambda g, y, threshold: torch.ops.aten.threshold_backward(g, y,
                                                                                   threshold),
    "sigmoid_backward": lambda g, y: torch.ops.aten.sigmoid_backward(g, y),
    "conv2d_input_grad": lambda g, w, input_shape, **a:
        torch.nn.grad.conv2d_input(input_shape, w, g, **a),
    "conv2d_weight_grad": lambda x, g, weight_shape, **a:
        torch.nn.grad.conv2d_weight(x, weight_shape, g, **a),
    "max_pool2d_backward": _pool_backward,
    "max_pool2d_select": _pool_select,
    "dropout": lambda x, m, p, training:
        x * m.to(x.dtype) / (1 - p) if training and p < 1 else (x * 0 if training else x),
    "binary_cross_entropy_with_logits": _bce_logits,
    "layer_norm": lambda x, *wb, normalized_shape, eps:
        F.layer_norm(x, normalized_shape, *wb, eps=eps),
    "round": lambda x, decimals: torch.round(x) if decimals is None else torch.round(
        x, decimals=decimals),  # decimals=None is the overload without it
    "all": _dim_or_all(torch.all),
    "any": _dim_or_all(torch.any),
    "binary_cross_entropy": lambda x, t, *w, reduction:
        F.binary_cross_entropy(x, t, w[0] if w else None, reduction=reduction),
}


class _Overwrite(torch.autograd.Function):
    """The catalog's `overwrite`: the second input's value, the gradient to the first."""

    @staticmethod
    def forward(ctx, history, value):
        return value.clone()

    @staticmethod
    def backward(ctx, g):
        return g, None


REFS["overwrite"] = _Overwrite.apply
# The catalog's `replace` is what PyTorch records for copy_ into a tensor with history.
REFS["replace"] = lambda history, value: history.clone().copy_(value)
REFS["lerp_kernel"] = torch.lerp
REFS["addcdiv_kernel"] = torch.addcdiv
REFS["addcmul_kernel"] = torch.addcmul


def _bce_input_grad(x, t):
    """The catalog's bce_input_grad: binary_cross_entropy's gradient for its input, per
    element, as PyTorch's autograd computes it (its derivatives are PyTorch's too)."""
    with torch.enable_grad():
        # a clone: the partial derivative for the input only (t may be computed from x)
        xg = x.clone() if x.requires_grad else x.detach().requires_grad_()
        (g,) = torch.autograd.grad(F.binary_cross_entropy(xg, t, reduction="sum"), xg,
                                   create_graph=True)
    return g


REFS["bce_input_grad"] = _bce_input_grad


def _prod_others(x, dim=None):
    """The catalog's prod_others: each element's product of the others in its slice, as
    PyTorch's gradient of prod gives it (with a zero in x: its exclusive products)."""
    with torch.enable_grad():
        xg = x.clone() if x.requires_grad else x.detach().requires_grad_()
        p = xg.prod() if dim is None else xg.prod(dim)
        (g,) = torch.autograd.grad(p.sum(), xg, create_graph=True)
    return g


REFS["prod_others"] = _prod_others


def _prod_others_hvp(c, x, dim=None, grad_mode=False):
    """The catalog's prod_others_hvp: prod_others' vector-Jacobian product at c, as
    PyTorch's second derivative of prod computes it, with create_graph (grad mode: the
    samples of grad_mode=False are those where its value is the same)."""
    with torch.enable_grad():
        xg = x.clone() if x.requires_grad else x.detach().requires_grad_()
        (h,) = torch.autograd.grad(_prod_others(xg, dim), xg, c, create_graph=True)
    return h


REFS["prod_others_hvp"] = _prod_others_hvp


def reference(name):
    if name in REFS:
        return REFS[name]
    fn = getattr(F, name, None) or getattr(torch, name)
    return lambda *args, **attrs: fn(*args, **attrs)
