"""Reductions over all or some dims, with keepdim."""

from __future__ import annotations

from ._registry import OpDef, register
from ._types import FLOATING, INTEGRAL, Meta, OpError, normalize_dims

_DIMS = {"dim": ("dims", None), "keepdim": ("bool", False)}


def reduced_shape(shape: tuple[int, ...], dim, keepdim: bool) -> tuple[int, ...]:
    dims = normalize_dims(dim, len(shape))
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _axes(dim, ndim):
    return None if dim is None else normalize_dims(dim, ndim)


def keep_shape(x, dim, keepdim):
    """The shape of a reduction's output with the reduced dims kept as size 1: the shape
    its gradient is reshaped to before it is expanded back over the input."""
    return reduced_shape(x.shape, dim, True)


def _expand_back(g, x, dim, keepdim):
    return g.reshape(shape=keep_shape(x, dim, keepdim)).expand(shape=x.shape)


def _infer_sum(metas, dim, keepdim):
    m = metas[0]
    dtype = "int64" if m.dtype in INTEGRAL or m.dtype == "bool" else m.dtype
    return Meta(reduced_shape(m.shape, dim, keepdim), dtype)


def _infer_mean(metas, dim, keepdim):
    m = metas[0]
    if m.dtype not in FLOATING:
        raise OpError(
            "mean(): could not infer output dtype. Input dtype must be either a floating "
            f"point or complex dtype. Got: {_torch_dtype_name(m.dtype)}"
        )
    return Meta(reduced_shape(m.shape, dim, keepdim), m.dtype)


def _infer_norm(metas, p, dim, keepdim):
    m = metas[0]
    if m.dtype not in FLOATING:
        raise OpError(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. "
            f"Got {_torch_dtype_name(m.dtype)}"
        )
    return Meta(reduced_shape(m.shape, dim, keepdim), m.dtype)


def _infer_bool_reduce(metas, dim, keepdim):
    return Meta(reduced_shape(metas[0].shape, dim, keepdim), "bool")


def _torch_dtype_name(dtype: str) -> str:
    return {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char",
            "uint8": "Byte", "bool": "Bool", "float16": "Half", "float32": "Float",
            "float64": "Double"}[dtype]


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _count(x, dim) -> int:
    return _numel(x.shape) // max(1, _numel(reduced_shape(x.shape, dim, True)))


def _norm_forward(xp, a, p, dim, keepdim):
    axes = _axes(dim, a.ndim)
    if p == 2.0:
        return xp.sqrt(xp.sum(a * a, axis=axes, keepdims=keepdim))
    if p == float("inf"):
        return xp.max(xp.abs(a), axis=axes, keepdims=keepdim)
    return xp.sum(xp.abs(a) ** p, axis=axes, keepdims=keepdim) ** (1.0 / p)


def _norm_vjp(g, x, out, p, dim, keepdim):
    if p != 2.0:
        raise OpError(f"norm: derivative for p={p} is not implemented yet")
    # d||x||/dx = x / ||x||; PyTorch defines the gradient at ||x|| = 0 as 0.
    safe = (out == 0).where(out.full_like(1.0), out)
    return x * _expand_back(g / safe, x, dim, keepdim)


register(OpDef(
    "sum", 1, lambda metas, dim, keepdim: _infer_sum(metas, dim, keepdim),
    lambda xp, a, dim, keepdim: xp.sum(a, axis=_axes(dim, a.ndim), keepdims=keepdim),
    (lambda g, x, out, dim, keepdim: _expand_back(g, x, dim, keepdim),),
    attrs=dict(_DIMS), torch_name="SumBackward0",
))
register(OpDef(
    "mean", 1, lambda metas, dim, keepdim: _infer_mean(metas, dim, keepdim),
    lambda xp, a, dim, keepdim: xp.mean(a, axis=_axes(dim, a.ndim), keepdims=keepdim),
    (lambda g, x, out, dim, keepdim: _expand_back(g, x, dim, keepdim) / _count(x, dim),),
    attrs=dict(_DIMS), torch_name="MeanBackward0",
))
register(OpDef(
    "norm", 1, lambda metas, p, dim, keepdim: _infer_norm(metas, p, dim, keepdim),
    _norm_forward, (_norm_vjp,),
    attrs={"p": ("float", 2.0), **_DIMS}, torch_name="LinalgVectorNormBackward0",
))
register(OpDef(
    "all", 1, lambda metas, dim, keepdim: _infer_bool_reduce(metas, dim, keepdim),
    lambda xp, a, dim, keepdim: xp.all(a, axis=_axes(dim, a.ndim), keepdims=keepdim),
    attrs=dict(_DIMS),
))
register(OpDef(
    "any", 1, lambda metas, dim, keepdim: _infer_bool_reduce(metas, dim, keepdim),
    lambda xp, a, dim, keepdim: xp.any(a, axis=_axes(dim, a.ndim), keepdims=keepdim),
    attrs=dict(_DIMS),
))
