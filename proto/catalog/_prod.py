"""prod's derivatives with a zero in the input, as PyTorch computes them.

With a zero anywhere in x, PyTorch's prod backward is g * (EN * ER): EN the exclusive
products from the left (cumprod of [1, x_0 .. x_{n-2}]), ER those from the right (a flipped
cumprod). Its second derivative differentiates those two cumprods with cumprod's backward,
which without grad mode (a second `autograd.grad` without create_graph) is an O(n) formula
that treats the part before a slice's first zero, the first zero, and the rest apart. The
kernels here compute exactly that, so the second derivative is PyTorch's where x holds one
zero, two zeros, infinities or NaNs (inf - inf or 0 * inf where a formula over all of x
would subtract or multiply the terms it does not need).

With grad mode (a second derivative asked for with create_graph) PyTorch's cumprod
backward is another formula where the tensor holds a zero: for each k the sum over i >= k
of w_i times the product before k times the products from k + 1 to i, each term's product
taken whole, so an inf before k meets the zeros after it (NaN) where the O(n) formula
never multiplies them; `_cumprod_vjp_grad_mode` computes that.

The second derivative's own derivative (third order) goes through `hvp_graph`, the
Hessian-vector product written with prod_others over a matrix per slice: exact at every
order, O(n^2), and evaluated only when a third derivative is asked for.
"""

from __future__ import annotations

import math


def _last(xp, a, dim):
    """a with the reduced dim last (all of a, flattened, for dim None)."""
    return a.reshape(-1) if dim is None else xp.moveaxis(a, dim % a.ndim, -1)


def _back(xp, r, a, dim):
    return r.reshape(a.shape) if dim is None else xp.moveaxis(r, -1, dim % a.ndim)


def _ones(xp, a):
    return xp.ones(a.shape[:-1] + (1,), a.dtype)


def _exclusive(xp, v):
    """PyTorch's exclusive cumprod along the last axis: cumprod of [1, v_0 .. v_{n-2}]."""
    return xp.cumprod(xp.concatenate([_ones(xp, v), v[..., :-1]], axis=-1), axis=-1)


def _rcumsum(xp, a):
    return xp.flip(xp.cumsum(xp.flip(a, axis=-1), axis=-1), axis=-1)


def others_forward(xp, a, dim):
    """Each element's product of the others in its slice: EN * ER (PyTorch's order)."""
    if a.ndim == 0:
        return xp.ones_like(a)
    v = _last(xp, a, dim)
    if v.shape[-1] == 0:
        return a.copy()
    out = _exclusive(xp, v) * xp.flip(_exclusive(xp, xp.flip(v, axis=-1)), axis=-1)
    return _back(xp, out, a, dim)


def _cumprod_vjp(xp, w, y, out):
    """PyTorch's cumprod_backward (no grad mode) of out = cumprod(y) along the last axis at
    cotangent w: before a slice's first zero reversed_cumsum(out * w) / y; at the first
    zero the products between it and the next zero, weighted by w, times the product
    before it; after it nothing."""
    if y.size <= 1 or y.shape[-1] == 1:
        return w
    zeros = xp.cumsum(y == 0, axis=-1)
    before = zeros == 0
    res = xp.where(before, _rcumsum(xp, xp.where(before, out * w, 0)) / y, 0)
    seg = zeros == 1
    first = xp.argmax(seg, axis=-1)[..., None]
    at_first = (xp.arange(y.shape[-1]) == first) & seg
    inside = seg & ~at_first
    lead = xp.take_along_axis(out, xp.maximum(first - 1, 0), axis=-1)
    lead = xp.where(first == 0, 1, lead)
    val = (xp.cumprod(xp.where(inside, y, 1), axis=-1) * xp.where(seg, w, 0)).sum(
        axis=-1, keepdims=True) * lead
    return xp.where(at_first, val, res).astype(y.dtype)


def _cumprod_vjp_grad_mode(xp, w, y, out):
    """PyTorch's cumprod_backward with grad mode on (along the last axis): out / y summed
    as in _cumprod_vjp where y holds no zero at all; otherwise, for each k, the sum over
    i >= k of w_i * (prod(y[:k]) * prod(y[k+1:i+1])), O(n^2)."""
    n = y.shape[-1]
    if y.size <= 1 or n == 1:
        return w
    if not (y == 0).any():
        return _rcumsum(xp, out * w) / y
    res = xp.empty_like(w)
    for k in range(n):
        after = xp.cumprod(y[..., k + 1:], axis=-1)
        if k == 0:
            terms = xp.concatenate([_ones(xp, y), after], axis=-1)
        else:
            before = xp.prod(y[..., :k], axis=-1, keepdims=True)
            terms = xp.concatenate([before, before * after], axis=-1)
        res[..., k] = (w[..., k:] * terms).sum(axis=-1)
    return res


def hvp_forward(xp, c, a, dim, grad_mode=False):
    """The vector-Jacobian product of others_forward at cotangent c, as PyTorch's second
    derivative of prod computes it: cumprod's backward through EN and through ER (its
    grad-mode formula with `grad_mode`)."""
    if a.ndim == 0 or a.size == 0:
        return xp.zeros_like(a)
    v, cv = _last(xp, a, dim), _last(xp, c, dim)
    n = v.shape[-1]
    if n == 1:  # PyTorch's backward passes the seed there: nothing depends on x
        return xp.zeros_like(a)
    flipped = xp.flip(v, axis=-1)
    en, er_rev = _exclusive(xp, v), _exclusive(xp, flipped)
    er = xp.flip(er_rev, axis=-1)
    one = _ones(xp, v)
    y_n = xp.concatenate([one, v[..., :-1]], axis=-1)
    y_r = xp.concatenate([one, flipped[..., :-1]], axis=-1)
    vjp = _cumprod_vjp_grad_mode if grad_mode else _cumprod_vjp
    from_n = vjp(xp, cv * er, y_n, en)[..., 1:]
    from_r = xp.flip(vjp(xp, xp.flip(cv * en, axis=-1), y_r, er_rev)[..., 1:], axis=-1)
    zero = xp.zeros_like(one)
    out = xp.concatenate([from_n, zero], axis=-1) + xp.concatenate([zero, from_r], axis=-1)
    return _back(xp, out, a, dim)


def hvp_graph(c, x, dim, grad_mode=False):
    """hvp_forward's value written with catalog ops, for its derivatives: sum over i != j
    of c_i times the product of all but x_i and x_j, that product read from prod_others
    of a matrix whose row i is the slice with x_i replaced by 1."""
    if x.ndim == 0:
        return x.full_like(0.0)
    shape0 = x.shape
    if dim is None:
        size = (math.prod(shape0),)
        x, c, d = x.reshape(shape=size), c.reshape(shape=size), 0
    else:
        d = dim % x.ndim
    n = x.shape[d]
    ar = x.source("arange", end=n)
    shape = [1] * (x.ndim + 1)
    shape[d] = shape[d + 1] = n
    eye = (ar.reshape(shape=(n, 1)) == ar.reshape(shape=(1, n))).reshape(shape=tuple(shape))
    rows = list(x.shape)
    rows.insert(d, n)
    m = eye.where(1.0, x.unsqueeze(dim=d).expand(shape=tuple(rows)))
    terms = eye.where(0.0, m.prod_others(dim=d + 1) * c.unsqueeze(dim=d + 1))
    return terms.sum(dim=d).reshape(shape=shape0)
