"""Reductions over all or some dims (with keepdim), scans and softmax.

Max/min with indices are two single-output ops each (see the catalog docstring):
`max(dim)` gives the values, `argmax(dim)` the indices.
"""

from __future__ import annotations

from functools import partial

from . import _batching as _batch
from . import _prod
from ._registry import GRAD_MODE, define, sgn
from ._samples import F, S, X
from ._special import softmax_rows, softmax_rows_apply
from ._types import (
    DEFAULT_FLOAT,
    FLOATING,
    INTEGRAL,
    Meta,
    OpError,
    check_dim,
    normalize_dims,
    numel,
    torch_dtype_name,
)

_DIMS = {"dim": ("dims", None), "keepdim": ("bool", False)}


def reduced_shape(shape: tuple[int, ...], dim, keepdim: bool) -> tuple[int, ...]:
    dims = normalize_dims(dim, len(shape))
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def axes(dim, ndim):
    """numpy's axis argument for a dims attribute (None: all dims)."""
    return None if dim is None or not ndim else normalize_dims(dim, ndim)


def kept(g, x, dim):
    """A reduction's gradient reshaped with the reduced dims kept as size 1, so that it
    broadcasts against the input (the engine expands a rule's result to the input)."""
    return g.reshape(shape=reduced_shape(x.shape, dim, True))


def count(x, dim) -> int:
    return numel(x.shape) // max(1, numel(reduced_shape(x.shape, dim, True)))


def _infer_sum(metas, dim, keepdim):
    m = metas[0]
    dtype = "int64" if m.dtype in INTEGRAL or m.dtype == "bool" else m.dtype
    return Meta(reduced_shape(m.shape, dim, keepdim), dtype)


def _need_float(name, m):
    if m.dtype not in FLOATING:
        raise OpError(f"{name}(): could not infer output dtype. Input dtype must be either "
                      f"a floating point or complex dtype. Got: {torch_dtype_name(m.dtype)}")


def _infer_float_reduce(name):
    def infer(metas, dim, keepdim, **_):
        _need_float(name, metas[0])
        return Meta(reduced_shape(metas[0].shape, dim, keepdim), metas[0].dtype)
    return infer


def _nonempty(name, m, dim):
    if dim is None and numel(m.shape) == 0:  # argmax/argmin: PyTorch's IndexError, shorter
        raise OpError(f"{name}(): Expected reduction dim to be specified for input.numel() "
                      "== 0." + ("" if name in ("argmax", "argmin") else
                                 " Specify the reduction dim with the 'dim' argument."))
    for d in normalize_dims(dim, len(m.shape)):
        if m.shape and m.shape[d] == 0:
            raise OpError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def _infer_extreme(name, dtype=None):
    # max()/min() over everything take no keepdim in PyTorch; amax and argmax honour it.
    honour = name not in ("max", "min")

    def infer(metas, dim, keepdim):
        m = metas[0]
        if name in ("argmax", "argmin") and m.dtype == "bool":
            raise OpError(f"{name}(): does not support bool input")
        _nonempty(name, m, dim)
        keep = keepdim and (honour or dim is not None)
        return Meta(reduced_shape(m.shape, dim, keep), dtype or m.dtype)
    return infer


def _evenly(g, x, out, dim, nans: bool = False):
    """amax/amin (and full max/min): ties share the gradient evenly, as in PyTorch. With
    `nans` (full max/min) a NaN result is shared by the NaNs that made it; amax/amin's
    rule compares values only, so there a NaN result gives NaN gradients (PyTorch's too).
    amax/amin's is PyTorch's (g / count) * mask: an infinite or NaN g is NaN everywhere
    (times 0), and its second derivative sums the masked cotangent before it divides (an
    overflow there is PyTorch's). Full max/min's fills the mask's places into zeros (as
    PyTorch's masked_fill_), so the others stay 0 whatever g is, and so does their
    second derivative (before: an infinite cotangent times a 0 of the mask, NaN)."""
    best = kept(out, x, dim)
    hit = x == best
    if nans:
        hit = hit | (x.isnan() & best.isnan())
        # the division last (PyTorch's divides before it fills): the gradient's grad_fn
        # stays DivBackward0, which the differential tester knows
        return hit.where(kept(g, x, dim), 0.0) / hit.cast(dtype=g.dtype).sum()
    hit = hit.cast(dtype=g.dtype)
    return kept(g, x, dim) / hit.sum(dim=dim, keepdim=True) * hit


def _to_index(g, x, out, dim, keepdim, arg):
    """max/min along a dim: the gradient goes to the index the forward picked."""
    if dim is None:
        return _evenly(g, x, out, dim, nans=True)
    idx = getattr(x, arg)(dim=dim, keepdim=True)
    # PyTorch's zeros().scatter_(g): a -0.0 of g stays -0.0 (a scatter_add made it +0.0)
    return x.full_like(0.0).scatter(idx, kept(g, x, dim), dim=dim)


_SAMPLES = (S(F(3, 4)), S(F(3, 4), dim=1, keepdim=True), S(F(2, 3, 4), dim=(0, 2)),
            S(F()), S(F(0, 3), dim=1), S(F(2, 3, 4), dim=-1))
_NONEMPTY = (S(F(3, 4)), S(F(3, 4), dim=1, keepdim=True), S(F(2, 3, 4), dim=(0, 2)),
             S(F()), S(F(0, 3), dim=1), S(F(2, 3, 4), dim=-1))
_ONE_DIM = (S(F(3, 4)), S(F(3, 4), dim=1, keepdim=True), S(F(2, 3, 4), dim=0),
            S(F()), S(F(0, 3), dim=1), S(F(2, 3, 4), dim=-1))


# A reduction over `dim` (None, one dim or several) with `keepdim`, unless it says otherwise.
_reduction = partial(define, batch=_batch.reduction, attrs=dict(_DIMS), samples=_SAMPLES)


def _infer_logsumexp(metas, dim, keepdim):
    """Integer and bool inputs give the default float (the engine casts them first)."""
    m = metas[0]
    dtype = m.dtype if m.dtype in FLOATING else DEFAULT_FLOAT
    return Meta(reduced_shape(m.shape, dim, keepdim), dtype)


_reduction("sum", infer=_infer_sum,
           forward=lambda xp, a, dim, keepdim: xp.sum(a, axis=axes(dim, a.ndim), keepdims=keepdim),
           vjp=lambda g, x, out, dim, keepdim: kept(g, x, dim))
_reduction("mean", infer=_infer_float_reduce("mean"),
           forward=lambda xp, a, dim, keepdim: xp.mean(a, axis=axes(dim, a.ndim), keepdims=keepdim),
           vjp=lambda g, x, out, dim, keepdim: kept(g, x, dim) / count(x, dim))


def _prod_vjp(g, x, out, dim, keepdim):
    """g times the product of the other elements of the slice, as PyTorch computes it: with
    no zero in x, out / x (NaN at an inf); with a zero anywhere, the exclusive products
    (prod_others), exact with zeros, infinities and NaNs."""
    if x.ndim == 0:  # the product of one number is itself: the gradient passes (PyTorch's)
        return g
    zc = (x == 0).cast(dtype="int64")
    any_zero = zc.sum() > 0
    # with no zero, PyTorch's out / x: the gradient reads the result, as PyTorch's does
    # (a gradient of it with respect to the result is PyTorch's g / x). The branch not
    # taken still gets a cotangent, zero: each branch reads x (and out) through a where
    # that gives it ones then, so its derivative meets no inf or NaN (0 * inf), except
    # the result's: its zero cotangent reaches this rule again, where 0 * an infinite
    # product of the others is NaN (PyTorch's second derivative, which does not read the
    # result with a zero in x, is a number there)
    with_zero, without = any_zero.where(x, 1.0), any_zero.where(1.0, x)
    others = any_zero.where(with_zero.prod_others(dim=dim),
                            kept(any_zero.where(1.0, out), x, dim) / without)
    rest = _but_untaken(g, any_zero)
    grad = kept(g, x, dim) * others
    if rest is not None:
        # g holds that zero cotangent (this is the result's rule again, a second order):
        # where x holds a zero PyTorch's rule never read the result, so g less it is the
        # cotangent, nothing at all where it is all of g
        grad = any_zero.where(0.0 if rest is _NONE else kept(rest, x, dim) * others, grad)
    if dim is None and not GRAD_MODE.get():
        # PyTorch's backward of a full product with two zeros or more is zeros without
        # create_graph (also where an inf or NaN makes the products NaN), its exclusive
        # products with it: without, the value of the first and (for a caller that
        # differentiates it anyway) the derivative of the second
        grad = (zc.sum() > 1).where(grad.isfinite().where(grad - grad.detach(), 0.0), grad)
    return grad


_NONE = object()


def _but_untaken(g, cond, depth=4):
    """g less the cotangent `cond.where(0.0, h)` that prod's rule, through its branch not
    taken, sends back to the result where `cond` (x holds a zero) holds: g without that
    term of its sum (_NONE where it is all of g), or None where g holds no such term."""
    graph, n = g.g, g.id
    if graph.ops[n] == "where" and graph.inputs[n][0] == cond.id:
        zero = graph.inputs[n][1]
        if graph.ops[zero] == "const" and graph.attrs[zero]["value"] == 0.0:
            return _NONE
    if depth and graph.ops[n] == "add" and graph.attrs[n].get("alpha", 1) == 1:
        a, b = (type(g)(graph, i) for i in graph.inputs[n])
        for one, other in ((a, b), (b, a)):
            rest = _but_untaken(one, cond, depth - 1)
            if rest is not None:
                return other if rest is _NONE else rest + other
    return None


define("prod_others",
       batch=_batch.dims_shift('dim'),
       infer=lambda metas, dim: metas[0], forward=_prod.others_forward,
       # PyTorch's double backward of prod runs cumprod's backward in the sweep's grad mode
       vjp=lambda g, x, out, dim: g.prod_others_hvp(x, dim=dim, grad_mode=GRAD_MODE.get()),
       attrs={"dim": ("optional_int", None)},
       samples=(S(F(3, 4), dim=1), S(F(2, 3)), S(F(2, 0), dim=1), S(F(1), dim=0),
                S(X([[1.5, 0.0, 2.0], [0.5, 1.0, 3.0]]), dim=1),
                S(X([[1.5, 0.0, 2.0], [0.5, 1.0, 3.0]])),
                S(X([[0.0, 1.5, 0.0, 2.0], [0.5, 0.0, 1.0, 3.0]]), dim=1),
                S(X([[0.0, 1.5, 0.0], [0.5, 0.0, 1.0]]))))


def _infer_hvp(metas, dim, grad_mode):
    return metas[1]


# prod_others' derivative: PyTorch's values (a kernel), differentiated through a
# decomposition that is exact at every order (see _prod)
define("prod_others_hvp", nin=2, batch=_batch.all_batched(_batch.dims_shift('dim')),
       infer=_infer_hvp,
       forward=_prod.hvp_forward, decompose=_prod.hvp_graph,
       # grad_mode: PyTorch's cumprod backward with grad mode on (see _prod)
       attrs={"dim": ("optional_int", None), "grad_mode": ("bool", False)},
       samples=(S(F(3, 4), F(3, 4), dim=1), S(F(2, 3), F(2, 3)), S(F(2, 0), F(2, 0), dim=1),
                S(F(1), F(1), dim=0), S(F(4, 3), X([[1.5, 0.0, 2.0], [0.0, 1.0, 3.0],
                                                    [0.0, 0.0, 3.0], [0.5, 0.0, 1.0]]), dim=0),
                S(F(2, 3), X([[1.5, 0.0, 2.0], [0.5, 0.0, 3.0]])),
                # an inf before a zero: NaN with grad mode (the O(n^2) formula's products)
                S(F(2, 3), X([[float("inf"), 0.0, 2.0], [0.5, 1.0, 3.0]]), dim=1, fd=False,
                  second=False, grad_mode=True)))


def _prod_forward(xp, a, dim, keepdim):
    return xp.prod(a, axis=axes(dim, a.ndim), keepdims=keepdim)


_reduction("prod", infer=_infer_sum, forward=_prod_forward, vjp=_prod_vjp,
           attrs={"dim": ("optional_int", None), "keepdim": ("bool", False)},
           samples=_ONE_DIM + (S(F(3, 4), dim=1), S(F(2, 3)),
                               # zeros: one in a row, two in a row, two in all of x
                               S(X([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.5]]), dim=1),
                               S(X([[1.5, 0.0, 2.0], [0.5, 1.0, 3.0]])),
                               S(X([[1.5, 0.0, 2.0], [0.5, 0.0, 3.0]]))))


def _first_tie(xp, a, m, ax):
    """For each slice of a, its first element equal to m (kept dims): which of +0.0 and
    -0.0 a tie of zeros gives."""
    ax = tuple(range(a.ndim)) if ax is None else tuple(ax)
    flat = xp.moveaxis(a, ax, tuple(range(a.ndim - len(ax), a.ndim)))
    flat = flat.reshape(flat.shape[:a.ndim - len(ax)] + (-1,))
    at = xp.argmax(flat == m.reshape(flat.shape[:-1] + (1,)), axis=-1)[..., None]
    return xp.take_along_axis(flat, at, axis=-1).reshape(m.shape)


def _amax_forward(name):
    """PyTorch's amax/amin keep the first of tied zeros (+0.0, -0.0) in a slice shorter
    than its vector width (16 float64s, 32 float32s); numpy's keep the last."""
    def fwd(xp, a, dim, keepdim):
        ax = axes(dim, a.ndim)
        m = getattr(xp, name)(a, axis=ax, keepdims=True)
        if a.ndim and a.size:
            m = xp.where(m == 0, _first_tie(xp, a, m, ax), m)
        return m if keepdim or not a.ndim else m.reshape(reduced_shape(a.shape, dim, False))
    return fwd


_reduction("amax", infer=_infer_extreme("amax"), forward=_amax_forward("max"),
           vjp=lambda g, x, out, dim, keepdim: _evenly(g, x, out, dim),
           samples=_NONEMPTY[:4] + _NONEMPTY[5:] + (S(F(2, 3), keepdim=True),
                                                    S(X([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), dim=1,
                                                      fd=False)))
_reduction("amin", infer=_infer_extreme("amin"), forward=_amax_forward("min"),
           vjp=lambda g, x, out, dim, keepdim: _evenly(g, x, out, dim),
           samples=_NONEMPTY[:4] + _NONEMPTY[5:])

_ONE = {"dim": ("optional_int", None), "keepdim": ("bool", False)}
_MAXS = (S(F(3, 4)), S(F(3, 4), dim=1, keepdim=True), S(F(2, 3, 4), dim=0), S(F()),
         S(F(2, 3, 4), dim=-1), S(F(2, 3), keepdim=True))


def _extreme_forward(name):
    """max/min over a dim are the values at PyTorch's indices (the first extreme: of tied
    zeros, the first's sign); over everything numpy's reduction, whose sign of tied zeros
    is PyTorch's (the last)."""
    def fwd(xp, a, dim, keepdim):
        if dim is None or not a.ndim:
            return getattr(a, name)(axis=dim, keepdims=keepdim and dim is not None)
        at = getattr(xp, "arg" + name)(a, axis=dim, keepdims=True)
        out = xp.take_along_axis(a, at, axis=dim)
        return out if keepdim else out.squeeze(axis=dim)
    return fwd


_NAN_EXTREME = (S(X([1.0, float("nan"), float("nan")]), fd=False),)  # shared by the NaNs
_reduction("max", infer=_infer_extreme("max"), forward=_extreme_forward("max"),
           vjp=lambda g, x, out, dim, keepdim: _to_index(g, x, out, dim, keepdim, "argmax"),
           attrs=_ONE, samples=_MAXS + _NAN_EXTREME)
_reduction("min", infer=_infer_extreme("min"), forward=_extreme_forward("min"),
           vjp=lambda g, x, out, dim, keepdim: _to_index(g, x, out, dim, keepdim, "argmin"),
           attrs=_ONE, samples=_MAXS + _NAN_EXTREME)


def _arg_forward(name):
    def fwd(xp, a, dim, keepdim):
        if dim is None:
            r = getattr(xp, name)(a)
            return r.reshape((1,) * a.ndim) if keepdim else r
        return getattr(xp, name)(a, axis=dim, keepdims=keepdim)
    return fwd


_reduction("argmax", infer=_infer_extreme("argmax", "int64"), forward=_arg_forward("argmax"),
           attrs=_ONE, samples=_MAXS)
_reduction("argmin", infer=_infer_extreme("argmin", "int64"), forward=_arg_forward("argmin"),
           attrs=_ONE, samples=_MAXS)


def _infer_bool_reduce(metas, dim, keepdim):
    return Meta(reduced_shape(metas[0].shape, dim, keepdim), "bool")


_reduction("all", infer=_infer_bool_reduce,
           forward=lambda xp, a, dim, keepdim: xp.all(a, axis=axes(dim, a.ndim), keepdims=keepdim))
_reduction("any", infer=_infer_bool_reduce,
           forward=lambda xp, a, dim, keepdim: xp.any(a, axis=axes(dim, a.ndim), keepdims=keepdim))


# --- statistics ---------------------------------------------------------------------------
_VAR = {"dim": ("dims", None), "correction": ("scalar", 1), "keepdim": ("bool", False)}


def _var_forward(xp, a, dim, correction, keepdim, root=False):
    # By hand rather than xp.var, which warns (in a worker's log) where PyTorch's value is
    # simply nan or inf: no degrees of freedom left, or nothing to reduce.
    ax = axes(dim, a.ndim)
    n = numel(a.shape) // max(1, numel(reduced_shape(a.shape, dim, True)))
    wide = a.astype(xp.float64, copy=False)
    if a.dtype == xp.float32 and numel(reduced_shape(a.shape, dim, True)) == 1:
        # PyTorch's CPU kernel for one float32 result: the mean in float32 (inf where the
        # float32 sum overflows), the squared deviations summed in float64
        mean = (xp.sum(a, axis=ax, keepdims=True) / a.dtype.type(n)).astype(xp.float64)
    else:  # Welford's, all in float64: no float32 square overflows (sinh(50) ** 2)
        mean = xp.sum(wide, axis=ax, keepdims=True) / n
    centred = wide - mean
    var = xp.sum(centred * centred, axis=ax, keepdims=keepdim) / float(max(n - correction, 0))
    return (xp.sqrt(var) if root else var).astype(a.dtype)


def _per_dof(scale: float, x, dim, correction) -> float:
    """scale / (N - correction) with IEEE semantics, as PyTorch's rule computes it: with no
    degrees of freedom left it is inf (the gradient is nan or inf, never an error)."""
    dof = count(x, dim) - correction
    return scale / dof if dof else float("inf")


def _no_dof_whole(x, dim, correction) -> bool:
    """A reduction over all of x (or a 0-d x) with no degrees of freedom left: PyTorch's
    rule takes it apart (see _var_vjp); over some dims it keeps the formula, whose factor
    2 / (N - correction) is then inf or negative."""
    return (x.ndim == 0 or dim is None) and count(x, dim) - correction <= 0


def _var_vjp(g, x, out, dim, correction, keepdim):
    if _no_dof_whole(x, dim, correction):  # NaN where x is its mean (inf * 0), else inf
        spread = (x == x.mean(dim=dim, keepdim=True)).where(float("nan"), float("inf"))
        return kept(g, x, dim) * spread
    centred = x - x.mean(dim=dim, keepdim=True)
    # PyTorch's order, (2 / dof * g) * centred: g * centred may overflow where it does not
    return kept(g, x, dim) * _per_dof(2.0, x, dim, correction) * centred


def _std_vjp(g, x, out, dim, correction, keepdim):
    # PyTorch's rule: var's rule of g / (2 std), that quotient set to 0 where the deviation
    # is 0 (not 0/0). So a second derivative reaches out there with 0 * inf (NaN), as
    # PyTorch's does, and x's through out is masked again by this rule (0).
    half = (out == 0).where(0.0, g / (out * 2))
    return _var_vjp(half, x, out, dim, correction, keepdim)


_VAR_SAMPLES = (S(F(3, 4)), S(F(3, 4), dim=1, keepdim=True), S(F(2, 3, 4), dim=(0, 2)),
                S(F(3, 4), dim=0, correction=0), S(F(2, 5), dim=1, correction=2),
                # No degrees of freedom left: nan and inf, as in PyTorch (which warns).
                # Of a 0-d tensor, PyTorch's gradient is a nan cut off from the graph
                # (so its second derivative is zero where ours is nan): first order only.
                S(F(), fd=False, second=False), S(F(1, 3), dim=0, fd=False),
                S(F(2, 3), dim=0, correction=2, fd=False),
                S(F(2, 3), dim=1, correction=4, fd=False), S(F(), correction=2, fd=False,
                                                             second=False))
_reduction("var", infer=_infer_float_reduce("var"), forward=_var_forward, vjp=_var_vjp,
           attrs=dict(_VAR), samples=_VAR_SAMPLES)
_reduction("std", infer=_infer_float_reduce("std"),
           forward=lambda xp, a, **kw: _var_forward(xp, a, **kw, root=True), vjp=_std_vjp,
           attrs=dict(_VAR), samples=_VAR_SAMPLES)


def _infer_norm(metas, p, dim, keepdim):
    m = metas[0]
    if m.dtype not in FLOATING:
        raise OpError("linalg.vector_norm: Expected a floating point or complex tensor as "
                      f"input. Got {torch_dtype_name(m.dtype)}")
    if p in (float("inf"), -float("inf")) and 0 in m.shape:  # max/min have no identity
        head = f"linalg.vector_norm cannot compute the {'inf' if p > 0 else '-inf'} norm on"
        if dim is None:
            raise OpError(f"{head} an empty tensor because the operation does not have an "
                          "identity")
        for d in (dim,) if isinstance(dim, int) else dim:
            if m.shape[d] == 0:
                raise OpError(f"{head} the dimension {d}because this dimension is empty and "
                              "the operation does not have an identity")
    return Meta(reduced_shape(m.shape, dim, keepdim), m.dtype)


def _norm_forward(xp, a, p, dim, keepdim):
    ax = axes(dim, a.ndim)
    if p != 0 and a.size and count(a, dim) == 1:
        # PyTorch's norm of one element per result is its abs: nothing squared underflows
        # (the norm of a float32 5.5e-38 is 5.5e-38, not sqrt(0.0))
        return xp.abs(a).reshape(reduced_shape(a.shape, dim, keepdim))
    if p == 0:  # the count of nonzero elements
        return xp.sum(a != 0, axis=ax, keepdims=keepdim).astype(a.dtype)
    if p == 2.0:
        return xp.sqrt(xp.sum(a * a, axis=ax, keepdims=keepdim))
    if p == float("inf"):
        return xp.max(xp.abs(a), axis=ax, keepdims=keepdim)
    if p == -float("inf"):  # (the generic formula's sum of |x| ** -inf gave 1)
        return xp.min(xp.abs(a), axis=ax, keepdims=keepdim)
    if p == 1.0:
        return xp.sum(xp.abs(a), axis=ax, keepdims=keepdim)
    return xp.sum(xp.abs(a) ** p, axis=ax, keepdims=keepdim) ** (1.0 / p)


def _norm_vjp(g, x, out, p, dim, keepdim):
    if p == 0:  # a count: PyTorch's rule gives no gradient (x unused)
        return None
    if p == 1.0:
        return kept(g, x, dim) * sgn(x)
    if p in (float("inf"), -float("inf")):
        # PyTorch's for either infinity: sgn(x) * ((g / mask.sum) * mask), the mask holding
        # the NaNs too (a NaN norm's gradient is then 0 through sgn(NaN), not 0 / 0)
        a = x.abs()
        hit = ((a == kept(out, x, dim)) | a.isnan()).cast(dtype=g.dtype)
        return sgn(x) * (kept(g, x, dim) / hit.sum(dim=dim, keepdim=True) * hit)
    if p == 2.0:
        # PyTorch's g * (x / ||x||) masked to 0 where ||x|| = 0: its derivative there is
        # NaN (0 / 0 through the division), as PyTorch's.
        n = kept(out, x, dim)
        return kept(g, x, dim) * (n == 0).where(0.0, x / n)
    # d||x||_p/dx = x |x|^(p-2) / ||x||^(p-1); PyTorch defines it as 0 where ||x|| = 0.
    safe = kept((out == 0).where(1.0, out), x, dim)
    scale = kept(g, x, dim) / safe ** (p - 1)
    return x * x.abs() ** (p - 2) * scale


_reduction("norm", infer=_infer_norm, forward=_norm_forward, vjp=_norm_vjp,
           attrs={"p": ("float", 2.0), **_DIMS},
           samples=(S(F(3, 4)), S(F(3, 4), dim=1, keepdim=True), S(F(3, 4), p=1.0),
                    S(F(2, 3, 4), p=float("inf"), dim=(0, 2)), S(F(3, 4), p=-float("inf")),
                    S(F(3, 4), p=3.0, dim=0), S(F()),
                    S(F(0, 3), dim=1)))


def _logsumexp_forward(xp, a, dim, keepdim):
    ax = axes(dim, a.ndim)
    m = xp.max(a, axis=ax, keepdims=True) if a.size else xp.zeros((1,) * a.ndim, a.dtype)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.sum(xp.exp(a - m), axis=ax, keepdims=True)) + m
    return out if keepdim else out.reshape(reduced_shape(a.shape, dim, False))


_reduction("logsumexp", infer=_infer_logsumexp, forward=_logsumexp_forward,
           vjp=lambda g, x, out, dim, keepdim: kept(g, x, dim) * (x - kept(out, x, dim)).exp(),
           attrs={"dim": ("dims", (0,)), "keepdim": ("bool", False)}, float_inputs=True,
           samples=(S(F(3, 4), dim=1), S(F(3, 4), dim=(0, 1), keepdim=True), S(F(2, 3, 4), dim=-1),
                    S(F(), dim=0), S(F(0, 3), dim=1)))


# --- scans and softmax --------------------------------------------------------------------
def _infer_scan(metas, dim):
    m = metas[0]
    check_dim(dim, len(m.shape))
    dtype = "int64" if m.dtype in INTEGRAL or m.dtype == "bool" else m.dtype
    return Meta(m.shape, dtype)


def _infer_softmax(metas, dim, kernel="softmax_lastdim_kernel_impl"):
    m = metas[0]
    check_dim(dim, len(m.shape))
    if m.dtype not in FLOATING and numel(m.shape):  # PyTorch runs no kernel on nothing
        raise OpError(f'"{kernel}" not implemented for \'{torch_dtype_name(m.dtype)}\'')
    return Meta(m.shape, m.dtype)


def _infer_log_softmax(metas, dim):
    return _infer_softmax(metas, dim, "log_softmax_lastdim_kernel_impl")


def _softmax_forward(xp, a, dim):
    if a.dtype.name == "float16" and a.ndim and dim % a.ndim == a.ndim - 1:
        # PyTorch's last-dim kernel: in float32, rounded once (its other-dim kernel's
        # float16 roundings are not modelled)
        return _softmax_forward(xp, a.astype("float32"), dim).astype(a.dtype)
    if softmax_rows_apply(xp, a, dim):
        return softmax_rows(xp, a, take_log=False)
    if not a.size:  # (of any dtype: see _infer_softmax)
        return a.copy()
    e = xp.exp(a - xp.max(a, axis=dim, keepdims=True))
    e /= xp.sum(e, axis=dim, keepdims=True)
    return e


def _log_softmax_forward(xp, a, dim):
    if a.dtype.name == "float16" and a.size and a.ndim and dim % a.ndim == a.ndim - 1:
        # PyTorch's last-dim kernel: x - max - log(sum(exp(x - max))) in float32, the sum
        # and its log stored in float16 (its buffers have the input's dtype)
        w = a.astype("float32")
        s = w - xp.max(w, axis=dim, keepdims=True)
        total = xp.sum(xp.exp(s), axis=dim, keepdims=True).astype(a.dtype)
        lse = xp.log(total.astype("float32")).astype(a.dtype)
        return (s - lse.astype("float32")).astype(a.dtype)
    if softmax_rows_apply(xp, a, dim):
        return softmax_rows(xp, a, take_log=True)
    if not a.size:
        return a.copy()
    s = a - xp.max(a, axis=dim, keepdims=True)
    s -= xp.log(xp.sum(xp.exp(s), axis=dim, keepdims=True))
    return s


_SCAN_SAMPLES = (S(F(3, 4), dim=1), S(F(2, 3, 4), dim=0), S(F(), dim=0), S(F(0, 3), dim=1),
                 S(F(2, 3, 4), dim=-1))
_ATTR_DIM = {"dim": ("int", 0)}


def _cumsum_vjp(g, x, out, dim):
    """PyTorch's cumsum_backward: the reversed cumsum of g, or g itself where nothing is
    summed (a slice of one element, or one element or none in all): a -0.0 of g stays."""
    if numel(x.shape) <= 1 or x.shape[dim] == 1:
        return g
    return g.flip(dims=(dim,)).cumsum(dim=dim).flip(dims=(dim,))


def _cumsum(xp, a, dim):
    if not a.ndim:  # PyTorch's cumsum of a 0-d tensor is a copy (-0.0 stays)
        return a.copy()
    # + 0: PyTorch's sums start from +0.0, so a leading -0.0 comes out as 0.0
    return xp.cumsum(a, axis=dim) + a.dtype.type(0)


define("cumsum", batch=_batch.dims_shift('dim'), infer=_infer_scan, forward=_cumsum,
       vjp=_cumsum_vjp,
       attrs=dict(_ATTR_DIM), samples=_SCAN_SAMPLES)
define("softmax", batch=_batch.dims_shift('dim'), infer=_infer_softmax,
       forward=lambda xp, a, dim: _softmax_forward(xp, a, dim if a.ndim else None),
       vjp=lambda g, x, out, dim: out * (g - (g * out).sum(dim=dim, keepdim=True)),
       attrs=dict(_ATTR_DIM), fresh=True, samples=_SCAN_SAMPLES)
define("log_softmax", batch=_batch.dims_shift('dim'), infer=_infer_log_softmax,
       forward=lambda xp, a, dim: _log_softmax_forward(xp, a, dim if a.ndim else None),
       vjp=lambda g, x, out, dim: g - out.exp() * g.sum(dim=dim, keepdim=True),
       attrs=dict(_ATTR_DIM), fresh=True, samples=_SCAN_SAMPLES)
