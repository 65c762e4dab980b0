"""Programs the differential tester (tests/differential/) found remotegrad computing
differently from PyTorch, each kept as a regression test: run under PyTorch and under
remotegrad, the values, gradients, dtypes and exception classes must agree. Each case is
the shrunk reproducer of one root cause (the commit that fixed it says which)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import remotegrad as rg

NAN, INF = math.nan, math.inf


def _grad(T, f, *xs):
    """f's value and the gradients of its sum with respect to xs."""
    out = f(*xs)
    gs = T.autograd.grad(out.sum(), xs, allow_unused=True, materialize_grads=True)
    return (out, *gs)


def _leaf(T, v, dtype="float64"):
    return T.tensor(v, dtype=getattr(T, dtype), requires_grad=True)


F = lambda T: T.nn.functional  # noqa: E731


def _twins_grad(T):
    v0 = _leaf(T, 0.13)
    v1, v2 = T.square(v0), T.square(v0)
    return T.autograd.grad(v2.sum() + v1.sum() + v0.sum(), [v0, v2], create_graph=True)


def _twins_retained(T):
    v0 = _leaf(T, [1.0, 2.0])
    a, b = v0 * 2, v0 * 2
    a.retain_grad()
    b.retain_grad()
    (a * 3 + b).sum().backward()
    return a.grad, b.grad, v0.grad
def _freed_trunc(T):
    """A node that saves nothing can be passed again after its graph was freed."""
    v0 = _leaf(T, [0.13, 2.5])
    v1 = T.trunc(v0) + v0.sign() + v0.cumsum(0) + v0.lerp(v0 * 2, 0.3)
    T.autograd.grad(v1.sum(), v0)
    T.maximum(v0, v1).log_softmax(0).sum().backward()
    return v0.grad


def _elu_unused(T):
    """The gradient of elu's gradient with respect to the elu's result is unused (None)."""
    v0 = _leaf(T, 0.13)
    v2 = F(T).elu(v0)
    g0, g2 = T.autograd.grad(v2.sum(), [v0, v2], create_graph=True)
    gg = T.autograd.grad(g0.sin().sum() + (g2 * g2).sum(), [v0, v2], allow_unused=True)
    return gg[0], T.tensor(gg[1] is None)


def _addcdiv_second(T):
    xs = [_leaf(T, [1.0, 2.0, 0.3]), _leaf(T, [0.5, 3.0, -2.0]), _leaf(T, [-0.0, 0.0, 0.7])]
    gs = T.autograd.grad(T.addcdiv(*xs, value=-0.5).sum(), xs, create_graph=True)
    return (*gs, *T.autograd.grad((gs[1] * gs[2]).sum() + gs[2].sum(), xs,
                                  allow_unused=True, materialize_grads=True))


def _second(T, f, x):
    """The second derivative of f's sum at x, through a create_graph first one."""
    (g,) = T.autograd.grad(f(x).sum(), x, create_graph=True)
    (gg,) = T.autograd.grad((g * g).sum(), x, allow_unused=True, materialize_grads=True)
    return g, gg


def _std_second(T, x, **kw):
    """std's gradients and second derivatives, with respect to x and to the std itself."""
    s = x.std(**kw)
    gs = T.autograd.grad(s.sum(), [x, s], create_graph=True)
    return (*gs, *T.autograd.grad((gs[0] * gs[0]).sum() + gs[1].sin().sum(), [x, s],
                                  allow_unused=True, materialize_grads=True))


def _one_class_losses(T):
    """1e-3 / a zero loss over one class: its sign of zero as PyTorch's kernels write it
    (-logp[t] per sample, +0.0 from a sum or one sample's kernel, -(sum) for probabilities)."""
    x, t, w = T.tensor([[0.3], [-1.2]]), T.tensor([0, 0]), T.tensor([2.0])
    ce, nll = F(T).cross_entropy, F(T).nll_loss
    outs = []
    for r in ("none", "sum", "mean"):
        outs += [ce(x, t, reduction=r), ce(x, T.tensor([0, -100]), reduction=r),
                 ce(x, t, w, reduction=r), ce(x[0], T.tensor(0), reduction=r),
                 ce(x[0], T.tensor(0), w, reduction=r), nll(x.log_softmax(1), t, reduction=r),
                 nll(x[0].log_softmax(0), T.tensor(0), reduction=r),
                 ce(x, T.ones(2, 1), reduction=r), ce(x, T.ones(2, 1), w, reduction=r),
                 ce(x[0], T.ones(1), reduction=r), ce(x, x.softmax(-1), reduction=r)]
    return tuple(1e-3 / o for o in outs)


def _modified_after(T, f, n=2):
    """f over x * 1 (and a second such operand), the first modified in place afterwards:
    PyTorch's node saved it, so backward raises."""
    xs = [_leaf(T, [[0.3, -0.7], [0.5, 0.2]]) for _ in range(n)]
    ys = [x * 1 for x in xs]
    out = f(*ys)
    ys[0].add_(1)
    return T.autograd.grad(out.sum(), xs[0])


def _l1_twice(T):
    """l1_loss's graph, freed by a first backward, refuses a second one (abs saved)."""
    v0 = _leaf(T, 0.13, "float32")
    v1 = v0.std(0, correction=0)
    v2 = F(T).l1_loss(v0, v1)
    T.autograd.grad((v2 * v2).sum(), v1)
    return T.autograd.grad(v2.sum(), v0)


def _l1_input_changed(T):
    """abs saved input - target, not the input: changing the input afterwards is fine."""
    x = _leaf(T, [0.3, -0.7])
    y = x * 1
    loss = F(T).l1_loss(y, T.tensor([0.2, 0.9], dtype=T.float64), reduction="none")
    y.add_(1)
    return T.autograd.grad(loss.sum(), x)


def _through_freed_derivative(T):
    """A create_graph gradient's graph is PyTorch's double-backward graph: a backward
    through it (without retain_graph) frees its products, and a later one fails."""
    v0 = _leaf(T, [0.13], "float32")
    (v1,) = T.autograd.grad((v0 * v0).sum(), v0, create_graph=True)
    T.autograd.grad((v1 * v1).sum(), v0)
    return T.autograd.grad(v1[-1].sum(), v0)


def _whole_setitem(T):
    """x[key] = value over all of x is PyTorch's fill_/copy_: the old value gets a zero
    gradient that depends on nothing (a create_graph gradient with no grad_fn)."""
    out = []
    for key in (Ellipsis, (Ellipsis, slice(None, 1)), slice(None)):
        v0 = _leaf(T, [0.13], "float32")
        v4 = v0[v0 > 0]
        v4[key] = INF
        (g,) = T.autograd.grad(v4.sinh().sum(), v0, create_graph=True)
        out += [g, T.tensor(g.requires_grad)]
    v0 = _leaf(T, [0.13, 0.5])
    x = v0 * 1
    x[...] = T.ones(2, dtype=T.float64)
    (g,) = T.autograd.grad(x.sin().sum(), v0, create_graph=True)
    return (*out, g, T.tensor(g.requires_grad), x)


def _wrt_a_gradient(T):
    """d/d(g) where g = d sqrt(x)/dx is also an expression a later rule recomputes (div's
    x / y): the rule's copy is not the tensor differentiated against."""
    v0 = _leaf(T, 0.13, "float32")
    (v2,) = T.autograd.grad(v0.sqrt().sum(), v0, create_graph=True)
    gs = T.autograd.grad(v2.sum(), [v0, v2], create_graph=True)
    return T.autograd.grad(gs[0].sin().sum() + (gs[1] * v2).sum(), [v0, v2])


def _second_sin(T, f, x):
    """The second derivative of f's sum at x through sin of the gradient, whose cotangent
    is not zero where the gradient is (so a wrong second derivative there shows), and the
    third the same way."""
    (g,) = T.autograd.grad(f(x).sum(), x, create_graph=True)
    (gg,) = T.autograd.grad(g.sin().sum(), x, create_graph=True)
    return g, gg, *T.autograd.grad(gg.sin().sum(), x)


def _second_both(T, f, x):
    """The second derivative through sin(g) + g * g: a cotangent as large as g itself."""
    (g,) = T.autograd.grad(f(x).sum(), x, create_graph=True)
    return g, *T.autograd.grad((g * g).sum() + g.sin().sum(), x)


def _through_seed(T, f, c, x):
    """d/dw of <c, d(f(x) * w)/dx>: the second derivative through the rule's seed, with a
    cotangent c of the gradient chosen by the test (infinite, huge)."""
    w = _leaf(T, 0.5)
    (gx,) = T.autograd.grad((f(x) * w).sum(), x, create_graph=True)
    return gx, *T.autograd.grad((gx * T.tensor(c, dtype=T.float64)).sum(), w)


def _prod_through_result(T, x):
    """prod's second derivative where the result itself is used too (a cotangent of its
    own beside the one its rule's branch not taken sends back), and with respect to it."""
    y = x.prod(1)
    (g,) = T.autograd.grad(y.sum(), x, create_graph=True)
    return T.autograd.grad((g * g).sum() + (y * y).sum(), [x, y])


def _atan2_orders(T):
    """atan2's gradients at the origin (of both signs) and where x^2 + y^2 underflows, and
    their second order (PyTorch zeroes the infinite 1 / (x^2 + y^2) in the first only)."""
    xs = [_leaf(T, [0.0, -0.0, 1e-200, 0.5, 0.0]), _leaf(T, [0.0, 0.0, 1e-200, 0.0, -0.0])]
    gs = T.autograd.grad(T.atan2(*xs).sum(), xs, create_graph=True)
    return (*gs, *T.autograd.grad((gs[0].sin() + gs[1].sin()).sum(), xs))


def _seeded(T, f, seed, *xs):
    """The gradients of f with respect to xs for the seed `seed` (NaN/inf seeds too)."""
    return T.autograd.grad(f(*xs), xs, T.tensor(seed, dtype=T.float64),
                           allow_unused=True, materialize_grads=True)


CASES = {
    # shared ancestry: a composite's rule per argument is a partial derivative
    "mse_loss(a, a*2)": lambda T: _grad(T, lambda a: F(T).mse_loss(a, a * 2),
                                        _leaf(T, [0.3, -0.7, 1.1])),
    "l1_loss(a, a*2)": lambda T: _grad(T, lambda a: F(T).l1_loss(a, a * 2),
                                       _leaf(T, [0.3, -0.7, 1.1])),
    "mse_loss(a, silu(a))": lambda T: _grad(T, lambda a: F(T).mse_loss(a, F(T).silu(a)),
                                            _leaf(T, [0.3, -0.7, 1.1])),
    "bce(sigmoid(a), sigmoid(a/2))": lambda T: _grad(T, lambda a: F(T).binary_cross_entropy(
        a.sigmoid(), (a * 0.5).sigmoid()), _leaf(T, [0.3, -0.7, 1.1])),
    "cross_entropy(a, softmax(a))": lambda T: _grad(T, lambda a: F(T).cross_entropy(
        a, a.softmax(-1)), _leaf(T, [0.3, -0.7, 1.1])),
    "bce_with_logits(x, sigmoid(x)) at 0": lambda T: _grad(
        T, lambda a: F(T).binary_cross_entropy_with_logits(a, a.sigmoid(), reduction="none"),
        _leaf(T, [0.0, 0.7])),
    # two tensors with one expression are two tensors (the engine shares the expression)
    "grad wrt one of two equal expressions": lambda T: _twins_grad(T),
    "retain_grad on two equal expressions": lambda T: _twins_retained(T),
    # degenerate shapes
    "var of 0-d": lambda T: _grad(T, lambda a: a.var(), _leaf(T, 1.5)),
    "std over a size-1 dim": lambda T: _grad(T, lambda a: a.std(0), _leaf(T, [[1.0, 2.0]])),
    "std with correction=0 of 0-d": lambda T: _grad(T, lambda a: a.std(correction=0),
                                                    _leaf(T, 0.13)),
    "var of 0-d, correction=2": lambda T: _grad(T, lambda a: a.var(0, correction=2),
                                                _leaf(T, 0.13)),
    "var with correction = N": lambda T: _grad(T, lambda a: a.var(0, correction=2),
                                               _leaf(T, [[1.0, 2.0], [4.0, 3.0]])),
    "mse_loss broadcasting": lambda T: _grad(
        T, lambda a, b: F(T).mse_loss(a, b, reduction="none"),
        _leaf(T, [[1.0, 2.0], [3.0, 4.0]]), _leaf(T, [0.5, 1.0])),
    "l1_loss broadcasting": lambda T: _grad(T, lambda a, b: F(T).l1_loss(a, b),
                                            _leaf(T, [1.0, 2.0]), _leaf(T, [[0.5], [3.0]])),
    "size-0 leaf": lambda T: _grad(T, lambda a: (-a).sum(), _leaf(T, np.zeros((4, 0, 1)))),
    "x[x > 0] of a 0-d x": lambda T: (*_grad(T, lambda a: a[a > 0], _leaf(T, 0.13)),
                                      *_grad(T, lambda a: a[a > 0], _leaf(T, -0.13))),
    "split and chunk of nothing": lambda T: (*T.zeros(0).split(1), *T.zeros(0).chunk(3)),
    "softmax of an empty int tensor": lambda T: F(T).softmax(T.zeros((0, 3), dtype=T.int64), 1),
    "cross_entropy of nothing, probabilities": lambda T: F(T).cross_entropy(
        T.zeros(0), T.zeros(0).softmax(-1)),
    "var over all of x with no degrees of freedom": lambda T: (
        *_grad(T, lambda a: a.var(correction=2), _leaf(T, [0.13, 0.5])),
        *_grad(T, lambda a: a.var(correction=3), _leaf(T, [[0.1, 0.1]]))),
    "outer of float and int": lambda T: T.outer(T.tensor([2]).abs().log1p(), T.tensor([2])),
    "linear with a vector of weights": lambda T: _grad(
        T, lambda x, w: F(T).linear(x, w, T.tensor(1.0, dtype=T.float64)),
        _leaf(T, [0.13, 0.2]), _leaf(T, [0.5, -1.0])),
    "cat of legacy empty tensors along dim 1": lambda T: _grad(
        T, lambda a, b: T.cat([a, b], 1), _leaf(T, np.zeros(0)), _leaf(T, np.zeros(0))),
    "elu of -0.0": lambda T: F(T).elu(T.tensor([-0.0, 0.0, -INF, INF, -1.0])),
    "cat with a 0-d tensor second": lambda T: T.cat([T.ones(1), T.tensor(1.0)], 1),
    "cross_entropy against float64 probabilities": lambda T: F(T).cross_entropy(
        T.zeros(2, 3), T.zeros(2, 3, dtype=T.float64).softmax(-1)),
    "nll_loss of nothing, 0-d target": lambda T: F(T).nll_loss(T.zeros(0, 1), T.tensor(0)),
    "copy_ into an int tensor": lambda T: T.tensor([[2], [1]]).copy_(
        _leaf(T, [[0.5], [0.7]]) * 3),
    # an in-place op with an operand of a wider dtype casts back inside the op
    "x.mul_(float64) of a float32 x": lambda T: _grad(
        T, lambda a, b: (b * 1).mul_(a).addcmul_(a, a), _leaf(T, [0.3, -0.7]),
        _leaf(T, [0.5, 0.2], "float32")),
    # fill_/zero_/copy_ give the old history PyTorch's zeros_like(grad), which flows on
    "zero_ of log(x) at 0": lambda T: _grad(T, lambda a: a.log().zero_(), _leaf(T, [0.0, 1.0])),
    "fill_ then second order": lambda T: _second(
        T, lambda a: (a * a).fill_(2.0) * a + (a / a).copy_(a * 3), _leaf(T, [0.5, 0.0])),
    "rounded quotient under a NaN seed": lambda T: _seeded(
        T, lambda x, y: T.div(x, y, rounding_mode="floor"), [NAN, INF],
        _leaf(T, [1.5, 2.5]), _leaf(T, [0.5, 2.0])),
    "backward through trunc after its graph was freed": lambda T: _freed_trunc(T),
    # NaN and signed zeros
    "1/(x*-0.0) then 1/(x*0.0)": lambda T: (1 / (T.ones(2) * -0.0), 1 / (T.ones(2) * 0.0)),
    "numpy's -0.0 then 0.0 as attributes": lambda T: (
        1 / (T.ones(2) * np.float64(-0.0)), 1 / (T.ones(2) * np.float64(0.0)),
        1 / T.ones(2).clamp(np.float32(-0.0), np.float32(-0.0)),
        1 / T.ones(2).clamp(np.float32(0.0), np.float32(0.0))),
    "full(-0.0) then full(0.0)": lambda T: (1 / T.full((2,), -0.0), 1 / T.full((2,), 0.0)),
    "sign of NaN": lambda T: T.sign(T.tensor([NAN, -0.0, 2.0])),
    "sign of bool": lambda T: T.sign(T.tensor([True, False])),
    # PyTorch's cumsum_backward passes its seed where nothing is summed (-0.0 stays)
    "cumsum over a dim of one element, and of a 0-d tensor, under -0.0 seeds": lambda T: (
        *_seeded(T, lambda a: a.cumsum(0), [[-0.0, 1.0]], _leaf(T, [[1.5, 2.0]])),
        *_seeded(T, lambda a: a.cumsum(-1), [[-0.0], [NAN]], _leaf(T, [[1.5], [2.0]])),
        *_seeded(T, lambda a: a.cumsum(0), -0.0, _leaf(T, 1.5))),
    "cumsum from +0.0": lambda T: T.tensor([[-0.0, -INF], [NAN, 1.0]]).cumsum(1),
    "-0.0 % 2": lambda T: (T.tensor([-0.0, -0.13, 5.0]) % 2, T.tensor([-0.0, 3.0]) % INF),
    "clamp(min=-0.0) keeps 0.0": lambda T: T.tensor([0.0, -0.0, NAN, -1.0]).clamp(min=-0.0),
    "elu's gradient at NaN and inf": lambda T: _grad(T, lambda a: F(T).elu(a),
                                                      _leaf(T, [NAN, INF, -INF, 0.0, -0.0])),
    "elu's second derivative at 0, -0.0 and below": lambda T: _second(
        T, lambda a: F(T).elu(a, 0.7), _leaf(T, [-1.5, -0.0, 0.0, -30.0, 2.0])),
    "elu's gradient read from its input, not its result": lambda T: _elu_unused(T),
    # PyTorch's rule for tensor2, -g * (value * t1 / (t2 * t2)), not div's (x / y) / y:
    # its second order at a tensor2 of +-0.0 is inf * 0 (NaN), not +-inf
    "addcdiv's second order at a divisor of -0.0": lambda T: _addcdiv_second(T),
    # PyTorch's double backward is 0 where x is not < 0, NaN included (no exp(NaN) term)
    "elu's second derivative at NaN": lambda T: _second(
        T, lambda a: F(T).elu(a, alpha=0.5), _leaf(T, [NAN, -INF, -1.0, 0.0, 2.0])),
    # PyTorch's elu_double_backward masks by x < 0: selu's and celu's are 0 at x = +-0
    # (the sign of that zero is its product with the mask's 0: not compared)
    "selu's and celu's second derivatives at +-0": lambda T: tuple(
        t if k == 0 else t.abs() for f in (F(T).selu, lambda a: F(T).celu(a, 0.7))
        for k, t in enumerate(_second_sin(T, f, _leaf(T, [-0.0, 0.0, -1.5, NAN, 2.0, -INF])))),
    "atan2's gradient at (0, 0)": _atan2_orders,
    # PyTorch's formulas' order: -g * (out * out), -0.5 * g * out ** 3, (2 / sqrt(pi) *
    # exp(-x * x)) * g; an underflow or overflow inside meets the seed as PyTorch's does
    "reciprocal, rsqrt and erf gradients under huge and tiny seeds": lambda T: (
        *_seeded(T, lambda a: a.reciprocal(), [INF, 1e308, 2.0, 1e-300],
                 _leaf(T, [1e200, 1.5, -0.0, 1e-200])),
        *_seeded(T, lambda a: a.rsqrt(), [1e308, INF, 3.0, 1e-10],
                 _leaf(T, [1e-200, 1e200, 2.0, 1e-300])),
        *_seeded(T, lambda a: a.erf(), [1e308, INF, 0.3, 1e-300],
                 _leaf(T, [0.5, 30.0, -2.0, 1e-5]))),
    "gelu's gradient under an infinite seed": lambda T: _seeded(
        T, lambda a: F(T).gelu(a), [-INF, INF, NAN], _leaf(T, [-0.13, 0.5, 0.1])),
    "tanh gelu's gradient under an infinite seed": lambda T: _seeded(
        T, lambda a: F(T).gelu(a, approximate="tanh"), [-INF, INF, 1.0],
        _leaf(T, [-0.13, 0.5, 0.1])),
    "second derivative of a tensor over -inf": lambda T: _second(
        T, lambda y: T.tensor(0.13, dtype=T.float64) / y, _leaf(T, [-INF, -0.13, 0.64])),
    "relu of -0.0 and NaN": lambda T: _grad(T, lambda a: a.relu(),
                                            _leaf(T, [-0.0, NAN, 1.0])),
    "max() of NaNs": lambda T: _grad(T, lambda a: a.max(), _leaf(T, [1.0, NAN, NAN])),
    # full max/min fill the gradient into zeros (PyTorch's masked_fill_): an infinite seed,
    # or an infinite cotangent of the gradient, meets no 0 of the mask (NaN)
    "full max and min under infinite and NaN seeds": lambda T: tuple(
        g for op in ("max", "min") for seed in (INF, NAN, -INF) for g in _seeded(
            T, lambda a, op=op: getattr(a, op)(), seed, _leaf(T, [[1.0, 3.0, 3.0],
                                                                [2.0, 2.0, 2.0]]))),
    "full max and min, second order through the seed, an inf cotangent off the ties":
        lambda T: tuple(t for op in ("max", "min") for t in _through_seed(
            T, lambda a, op=op: getattr(a, op)(), [[INF, 1.0, 2.0], [-INF, 0.5, INF]],
            _leaf(T, [[1.0, 3.0, 3.0], [1.0, 2.0, 1.0]]))),
    # amax/amin: PyTorch's (g / count) * mask, whose second derivative sums the masked
    # cotangent before dividing by the count (here the sum overflows: inf)
    "amax and amin, second order through the seed, a sum that overflows": lambda T: tuple(
        t for f in (lambda a: a.amax(), lambda a: a.amin(1), lambda a: a.amax((0, 1), True))
        for t in _through_seed(T, f, [[1e308, 1e308, 1e308], [1e308, 1e308, 1e308]],
                               _leaf(T, [[3.0, 3.0, 3.0], [1.0, 1.0, 1.0]]))),
    # tied zeros: PyTorch's amax/amin (in a short slice) and max/min over a dim keep the
    # first's sign (max/min's values are those at their indices); full max/min the last's
    "amax, amin, max and min of tied zeros": lambda T: tuple(
        f(T.tensor([[0.0, -0.0, -0.0], [-0.0, 0.0, 0.0]])) for f in (
            lambda a: a.amax(1), lambda a: a.amin(0), lambda a: a.amax(), lambda a: a.amin(),
            lambda a: a.amax((0, 1), keepdim=True), lambda a: a.max(1)[0],
            lambda a: a.min(0, keepdim=True)[0], lambda a: a.max(), lambda a: a.min(),
            lambda a: a.reshape(-1).amax(0))),
    "max and min over a dim under a -0.0 seed (PyTorch's scatter into zeros)": lambda T: (
        *_seeded(T, lambda a: a.max(1)[0], [-0.0, 1.0], _leaf(T, [[1.0, 3.0], [2.0, 2.0]])),
        *_seeded(T, lambda a: a.min(0)[0], [NAN, -0.0], _leaf(T, [[1.0, 3.0], [2.0, 2.0]]))),
    "maximum with NaN": lambda T: _grad(T, lambda a, b: T.maximum(a, b),
                                        _leaf(T, [1.0, NAN, 2.0, 3.0]),
                                        _leaf(T, [1.0, 1.0, NAN, 0.0])),
    "minimum of x with itself": lambda T: _grad(T, lambda a: T.minimum(a, a),
                                                _leaf(T, [-1.0, NAN])),
    "sign's zero gradient meets NaN": lambda T: _grad(
        T, lambda a: (a.abs() + 0.5).rsqrt().sign(), _leaf(T, [INF, NAN], "float32")),
    "cosine_similarity broadcasting": lambda T: F(T).cosine_similarity(
        T.tensor([-0.65, 0.03]), T.tensor(0.13), -1),
    # pow's exponent rule multiplies the masked local derivative by g last, as PyTorch's
    "second derivative through 0.0 ** y": lambda T: _second(T, lambda y: 0.0 ** y,
                                                            _leaf(T, [0.13, 2.0])),
    "x ** y with NaN and inf seeds": lambda T: _seeded(
        T, lambda x, y: x ** y, [NAN, INF, NAN], _leaf(T, [0.0, 2.0, 0.0]),
        _leaf(T, [0.0, 0.0, 1.5])),
    # x ** 0 (a number): PyTorch's rule is zeros_like(x), with no second derivative at all
    "second derivative of (x * 1e-3) ** 0 where x ** -2 overflows": lambda T: _second(
        T, lambda a: (a * 1e-3) ** 0, _leaf(T, [0.0, 1e-20, 2.0], "float32")),
    # number exponents 0.5 and -0.5 are PyTorch's sqrt and rsqrt; tensor ones std::pow
    "x ** 0.5's gradient at -0.0 (rsqrt there)": lambda T: (
        *_grad(T, lambda a: a ** 0.5, _leaf(T, [-0.0, 4.0, -INF])),
        T.tensor([-0.0, -INF, 4.0]) ** -0.5),
    "x ** tensor(0.5) at -0.0 and -inf": lambda T: (
        1 / T.tensor([-0.0, -INF, 4.0]) ** T.tensor(0.5),
        1 / T.tensor([-0.0, -INF], dtype=T.float64) ** T.tensor([0.5], dtype=T.float64)),
    # norm of one element per result is its abs (nothing squared underflows); p = 0 counts
    "norm of one float32 element near the smallest normal": lambda T: _second(
        T, lambda a: a.norm() + a.reshape(1, 1).norm(dim=1).sum(), _leaf(T, 5.5e-38, "float32")),
    # norm(inf)'s mask holds the NaNs (PyTorch's): a NaN norm's gradient is sgn(NaN) = 0
    "norm(inf) of slices with a NaN": lambda T: (
        *_grad(T, lambda a: a.norm(INF, 0), _leaf(T, [[NAN, 0.5, 1.0], [0.0, 0.0, 3.0]])),
        *_grad(T, lambda a: a.norm(INF), _leaf(T, [[2.0, -2.0], [1.0, NAN]]))),
    "norm with p = 0": lambda T: (T.tensor([[5.0, 0.0], [0.0, 0.0]]).norm(0, dim=1),
                                  T.tensor([5.0, 0.0, -2.0]).norm(0)),
    # norm's rule is PyTorch's g * (x / ||x||) masked at ||x|| = 0: NaN second derivative
    "second derivative of norm at zero": lambda T: _second(
        T, lambda a: a.norm(2, -1, True), _leaf(T, [0.0, -0.0])),
    "second derivative of normalize of a 0-d -0.0": lambda T: _second(
        T, lambda a: F(T).normalize(a, dim=-1), _leaf(T, -0.0, "float32")),
    "norm of a zero row, second order, rows apart": lambda T: _second(
        T, lambda a: a.norm(dim=1) * 2, _leaf(T, [[0.0, 0.0], [3.0, -4.0]])),
    # prod's gradient is the product of the other elements as PyTorch computes it
    # abs's rule is g * sgn(x), and sgn's derivative an efficient zero (ZeroTensor): held
    # first, the next contribution replaces it (sub's -grad of it is -0.0, kept); mul, div
    # and views of it stay zero (no 0 / 0); added after a tensor, in place (+0.0)
    "l1_loss(x, x) and l1_loss(x, 2x), second order (sgn's efficient zero)": lambda T: (
        *_second(T, lambda a: F(T).l1_loss(a, a, reduction="none"), _leaf(T, [0.5, 0.0, -1.5])),
        *_second(T, lambda a: F(T).l1_loss(a, a * 2), _leaf(T, [0.5, 0.0, -1.5]))),
    "log|x| and sqrt|x|, second order at inf (sgn's zero held first: the -0.0 after it stays)":
        lambda T: (*_second(T, lambda a: a.abs().log(), _leaf(T, [INF, 0.0, 1.0])),
                   *_second(T, lambda a: a.abs().sqrt(), _leaf(T, [INF, 0.0, 1.0]))),
    "|log x| and norms of log x, second order at 0 (sgn's zero over 0 is zero, not NaN)":
        lambda T: (*_second(T, lambda a: a.log().abs(), _leaf(T, [0.0, -0.0, 0.5, -1.5])),
                   *_second(T, lambda a: a.log().norm(1), _leaf(T, [0.0, 0.5])),
                   *_second(T, lambda a: a.log().norm(INF, 0, True), _leaf(T, [0.0, 0.5]))),
    "prod over rows with zeros, inf and NaN": lambda T: _grad(
        T, lambda a: a.prod(1), _leaf(T, [[1.0, -1.0, 0.17], [-INF, NAN, -0.0],
                                         [2.87, INF, -1.0]])),
    "full prod with one zero and an inf": lambda T: _grad(
        T, lambda a: a.prod(), _leaf(T, [[1.0, 0.0, INF], [2.0, 3.0, 0.5]])),
    "second derivative of prod with a zero": lambda T: tuple(t.abs() for t in _second(
        T, lambda a: a.prod(0).abs().clamp(-0.5, 2), _leaf(T, [-0.0, -1.0]))),  # no signs
    "prod over a slice with two infinities, a zero elsewhere": lambda T: _grad(
        T, lambda a: a.prod(1), _leaf(T, [[[1.87, 0.0, INF, -INF], [0.5, 0.5, 0.04, 0.32],
                                          [-1.48, 0.84, 0.54, -INF]]])),
    "prod of columns with infinities, zeros and NaN": lambda T: _grad(
        T, lambda a: a.prod(0), _leaf(T, [[1.0, 0.0, INF], [2.0, 3.0, 0.5],
                                         [0.0, 0.0, 2.0], [NAN, 0.0, 1.0]])),
    "second derivative of prod with one zero in a row": lambda T: _second(
        T, lambda a: a.prod(1), _leaf(T, [[1.5, 0.0, 2.0], [0.5, 1.0, 3.0]])),
    # with two zeros in a slice (or in all of x, for a full prod) the second derivative is
    # the product of the others at the two zeros, not 0 (PyTorch's differentiates its
    # exclusive products); third order too
    "second derivative of prod with two zeros in a row": lambda T: _second_sin(
        T, lambda a: a.prod(1), _leaf(T, [[0.0, 0.0, 2.0], [0.5, 1.0, 3.0]])),
    "second derivative of a full prod with two zeros": lambda T: _second_sin(
        T, lambda a: a.prod(), _leaf(T, [[0.0, 1.2, 2.0], [0.5, 0.0, 3.0]])),
    "second derivative of prod over columns, one of zeros only": lambda T: _second_sin(
        T, lambda a: a.prod(0), _leaf(T, [[0.0, 0.0, 0.0], [0.5, 0.0, 3.0]])),
    "second derivative of prod with two zeros in a row of four": lambda T: _second_sin(
        T, lambda a: a.prod(1, keepdim=True), _leaf(T, [[0.0, 1.2, 2.0, 0.0],
                                                        [0.5, 0.0, 3.0, 1.0]])),
    # PyTorch's second derivative there is cumprod's backward of its exclusive products,
    # which reads only the part before a slice's first zero: no inf - inf, no 0 * inf
    "second derivative of prod with a zero and a product that overflows": lambda T: (
        *_second_both(T, lambda a: a.prod(0), _leaf(T, [0.0, -2.0, 1e200])),
        *_second_both(T, lambda a: a.prod(), _leaf(T, [[0.0, 0.5, 1e200], [0.5, 1.5, NAN]]))),
    # the branch of prod's rule not taken (out / x with a zero in x) gets a zero cotangent:
    # over x itself it met 0 * NaN; it reads ones there now
    "second derivative of prod with two zeros and a NaN": lambda T: (
        *_second_both(T, lambda a: a.prod(1), _leaf(T, [[0.0, NAN, 0.0]])),
        *_second_both(T, lambda a: a.prod(0), _leaf(T, [[0.0], [NAN], [0.0]]))),
    # the result's zero cotangent from the rule's branch not taken (out / x, where x holds
    # a zero) met an infinite product of the others (0 * inf); PyTorch never reads out there
    "second derivative of prod, an inf or NaN in a slice without a zero": lambda T: (
        *_second_both(T, lambda a: a.prod(1), _leaf(T, [[0.0, 1.0], [INF, 2.0]])),
        *_second_both(T, lambda a: a.prod(0), _leaf(T, [[0.0, INF], [3.0, 2.0]])),
        *_second_both(T, lambda a: a.prod(1, True), _leaf(T, [[0.0, 1.0], [NAN, 2.0]])),
        *_prod_through_result(T, _leaf(T, [[0.0, 1.0], [INF, 2.0]]))),
    # PyTorch's full prod backward with two zeros or more is zeros_like(x) without grad mode
    # and its exclusive products (NaN beside an inf or NaN) with it (create_graph)
    "full prod with two zeros and an inf or NaN, with and without create_graph": lambda T: tuple(
        T.autograd.grad(x.prod(), x, T.tensor(s, dtype=T.float64), create_graph=cg)[0]
        for v in ([[0.0, 0.0], [INF, 2.0]], [[0.0, NAN], [0.0, 2.0]])
        for s in (1.0, NAN) for cg in (False, True) for x in (_leaf(T, v),)),
    # ... and its second derivative with create_graph is cumprod's backward with grad mode,
    # PyTorch's O(n^2) formula (an inf before a zero: NaN), not the O(n) one
    "third order of a full prod with two zeros and an inf (grad-mode cumprod backward)":
        lambda T: _second_sin(T, lambda a: a.prod(), _leaf(T, [0.0, INF, 2.0, 0.0])),
    "prod with a NaN seed": lambda T: _seeded(
        T, lambda a: a.prod(1), [NAN, 1.0], _leaf(T, [[1.0, 0.0, INF], [2.0, 3.0, 0.5]])),
    # binary_cross_entropy's rules are PyTorch's (no clamp at -100 in the gradients)
    "bce gradients at 0, 1 and 1e-50": lambda T: _grad(
        T, lambda x, t: F(T).binary_cross_entropy(x, t, reduction="none"),
        _leaf(T, [0.0, 1.0, 0.3, 1e-50]), _leaf(T, [0.2, 0.7, 0.5, 0.5])),
    "bce with weights, second order": lambda T: _second(
        T, lambda x: F(T).binary_cross_entropy(x, T.tensor([0.2, 0.7], dtype=T.float64),
                                               T.tensor([1.5, 0.5], dtype=T.float64)),
        _leaf(T, [0.2, 0.9])),
    # bool matmul with nothing to multiply runs no kernel in PyTorch
    "bool matmul of empty operands": lambda T: (
        T.matmul(T.zeros(0, 3, dtype=T.bool), T.zeros(3, 2, dtype=T.bool)),
        T.matmul(T.zeros(2, 0, dtype=T.bool), T.zeros(0, 2, dtype=T.bool)),
        T.mm(T.zeros(2, 0, dtype=T.bool), T.zeros(0, 2, dtype=T.bool)),
        F(T).linear(T.zeros(0, 3, dtype=T.bool), T.zeros(3, dtype=T.bool))),
    "bool matmul": lambda T: T.matmul(T.zeros(2, 3, dtype=T.bool), T.zeros(3, 2, dtype=T.bool)),
    "bce second order, input near 0 and 1": lambda T: _second(
        T, lambda x: F(T).binary_cross_entropy(x, T.tensor([3.2e-5, 0.3, 0.2],
                                                            dtype=T.float64)),
        _leaf(T, [1e-9, 1e-10, 1 - 1e-9])),
    "bce second order through sigmoids": lambda T: _second(
        T, lambda a: F(T).binary_cross_entropy(a.sigmoid(), (a * 0.5).sigmoid()),
        _leaf(T, [-20.7, 0.3])),
    # lerp with PyTorch's two-sided formula (from end for |weight| >= 0.5)
    "lerp(x, 0.13, x) with infinities": lambda T: _grad(
        T, lambda a: T.lerp(a, T.tensor(0.13, dtype=T.float64), a),
        _leaf(T, [-INF, -1.2, INF, -1.14])),
    "lerp with a weight of 0.7": lambda T: _grad(
        T, lambda a, b: a.lerp(b, 0.7), _leaf(T, [1e16, 2.0, INF]), _leaf(T, [3.0, 5.0, INF])),
    # std's rule is PyTorch's: var's of g / (2 std), 0 where the deviation is 0
    "std at zero deviation, second order through the result": lambda T: _std_second(
        T, _leaf(T, 0.13), dim=0, correction=0),
    "std of rows, one constant": lambda T: _std_second(T, _leaf(T, [[1.0, 1.0], [2.0, 3.0]]),
                                                       dim=1),
    # class losses: PyTorch's order of checks, and what passes them
    "cross_entropy of an empty int tensor, probabilities": lambda T: (
        F(T).cross_entropy(T.zeros(0, 3, dtype=T.int64), T.zeros(0, 3), reduction="none"),
        F(T).cross_entropy(T.zeros(0, dtype=T.bool), T.zeros(0).softmax(-1)),
        F(T).cross_entropy(T.zeros(2, 0, dtype=T.int64), T.zeros(2, 0, dtype=T.float64))),
    "cross_entropy of a 1-D input against a longer probability target": lambda T: (
        F(T).cross_entropy(T.zeros(1), T.zeros(3).softmax(-1))),
    "nll_loss of ints, batch mismatch": lambda T: F(T).nll_loss(
        T.zeros(1, 0, dtype=T.int64), T.tensor(0)),
    "cross_entropy of nothing, 0-d target": lambda T: F(T).cross_entropy(T.zeros(0, 3),
                                                                         T.tensor(0)),
    "cross_entropy of nothing, 0-d target, smoothing": lambda T: F(T).cross_entropy(
        T.zeros(0, 1, dtype=T.int64), T.tensor(0), label_smoothing=0.1),
    "nll_loss of ints": lambda T: F(T).nll_loss(T.zeros(2, 3, dtype=T.int64),
                                                T.zeros(2, dtype=T.int64)),
    "nll_loss with an int32 target": lambda T: F(T).nll_loss(T.zeros(2, 3),
                                                             T.zeros(2, dtype=T.int32)),
    "cross_entropy of one sample, 1-element target": lambda T: (
        F(T).cross_entropy(T.tensor([0.13, -0.5]), T.tensor([1]), reduction="none"),
        F(T).nll_loss(T.tensor([0.13, -0.5]), T.tensor([0]))),
    # var/std of float32 sum their squared deviations in float64 (PyTorch's CPU kernels)
    "std of sinh in float32 (squares beyond float32)": lambda T: (
        *_grad(T, lambda a: T.sinh(a).std(), _leaf(T, [50.0, -3.0, 49.0], "float32")),
        *_grad(T, lambda a: T.sinh(a).std(1), _leaf(T, [[50.0, -3.0], [49.0, 1.0]],
                                                      "float32"))),
    "var of float32 whose float32 sum overflows": lambda T: (
        T.full((2, 2), 3e38).std(1), T.full((2, 2), 3e38).std(),
        T.tensor([[2e38, 2e38, 0.0]]).var(1), T.tensor([2e38, 2e38, 0.0]).std(0)),
    "cross_entropy over one class: the sign of a zero loss": _one_class_losses,
    # PyTorch's CPU moments merge its vector lanes into its tail with delta^2 * c * m0: inf * 0
    # (a NaN variance) where there is no tail (N % 4 == 0 in float64, % 8 in float32) or no
    # lane (N < 4 or 8) and the first lane's mean squared overflows; else inf (a zero result)
    "layer_norm of rows whose mean squared overflows": lambda T: (
        *_grad(T, lambda a: F(T).layer_norm(a, (3,)), _leaf(T, [[1e200, 1e200, -3.0],
                                                                 [0.5, 1.0, 2.0]])),
        *(F(T).layer_norm(T.tensor(v, dtype=getattr(T, d)), (len(v),)) for v, d in (
            ([1e160] + [0.0] * 7, "float64"), ([1e160] + [0.0] * 4, "float64"),
            ([0.0] + [1e160] * 3, "float64"), ([1e20] + [0.0] * 7, "float32"),
            ([1e20] + [0.0] * 8, "float32"))),
        F(T).layer_norm(T.full((2, 2, 2), 1e160, dtype=T.float64), (2, 2))),
    # -log_sigmoid(x) without softplus' threshold (past it, e^-20 was dropped)
    "bce_with_logits(x, sigmoid(x)) beyond 20": lambda T: _grad(
        T, lambda a: F(T).binary_cross_entropy_with_logits(a, a.sigmoid(), reduction="none")
        * 1e8, _leaf(T, [-20.3, -25.0, 21.0, -700.0])),  # (1e8: the test's atol is 1e-7)
    # smooth_l1/huber: the quadratic branch's zero cotangent met an infinite difference
    # (0 * inf); PyTorch's backward is +-1 there (and NaN at a NaN difference)
    # (the signs of the higher orders' zeros are PyTorch's fused kernel's: not compared)
    "smooth_l1_loss and huber_loss gradients at infinite differences": lambda T: tuple(
        t if k == 0 else t.abs() for f in (F(T).smooth_l1_loss, F(T).huber_loss)
        for k, t in enumerate(_second_sin(T, lambda a, f=f: f(a, T.zeros_like(a),
                                                                reduction="none") * 2,
                                          _leaf(T, [INF, -INF, NAN, 1.0, 0.3, 0.0, -2.0])))),
    # l1_loss is PyTorch's sub, abs and reduction: their saved tensors
    "l1_loss, a second backward through it": _l1_twice,
    "x[...] = value over all of x (a fill, a copy)": _whole_setitem,
    "x[bad key] = inf into int64: the number is checked first": lambda T: T.tensor(
        2).__setitem__((Ellipsis, slice(None, 1)), INF),
    "a backward through a create_graph gradient's freed graph": _through_freed_derivative,
    "with respect to a gradient that a rule recomputes": _wrt_a_gradient,
    "l1_loss of a 0-d float64 input and a float32 target with dims (broadcast first)":
        lambda T: (*_grad(T, lambda a, b: F(T).l1_loss(a, b, reduction="sum"), _leaf(T, 0.13),
                          _leaf(T, np.zeros(0), "float32")),
                   F(T).l1_loss(T.tensor(0.5, dtype=T.float64), T.zeros(2), reduction="none")),
    "l1_loss(x, t), x changed in place afterwards": _l1_input_changed,
    # a node that saves its operands checks their versions at backward
    "div(x, -1.5, rounding_mode='trunc'), x modified in place (saved only for other's)":
        lambda T: _modified_after(T, lambda x, t: T.div(x, -1.5, rounding_mode="trunc") + t),
    "fmod(x, t) of a t that requires no grad, x modified in place (nothing saved)":
        lambda T: _modified_after(T, lambda x, t: T.fmod(x, t.detach() + 0.5)),
    "round(bce_with_logits(x, t)), x modified in place": lambda T: _modified_after(
        T, lambda x, t: F(T).binary_cross_entropy_with_logits(x, t.sigmoid()).round()),
    # dtypes and errors
    "int // 0": lambda T: T.tensor([5, -3]) // T.tensor([0, 2]),
    "empty int by 0": lambda T: (T.fmod(T.zeros(0, dtype=T.int64), 0),
                                 T.remainder(T.zeros(0, dtype=T.int64), 0),
                                 T.zeros(0, dtype=T.int64) // 0),
    "int % 0": lambda T: T.remainder(T.tensor([5, -3]), T.tensor([0, 2])),
    "fmod int by 0": lambda T: T.fmod(T.tensor([5]), T.tensor([0])),
    "masked_fill of int with 1.5": lambda T: T.tensor([2, 3]).masked_fill(
        T.tensor([True, False]), 1.5),
    "addcmul of ints, value 0.5": lambda T: T.addcmul(T.tensor([2]), T.tensor([2]),
                                                     T.tensor([3]), value=0.5),
    "float - bool": lambda T: T.tensor([1.0]) - T.tensor([True]),
    "bool % bool": lambda T: T.tensor([True]) % T.tensor([True]),
    "bool // bool": lambda T: T.tensor([True]) // T.tensor([True]),
    "argmax of bool": lambda T: T.tensor([True, False]).argmax(),
    "mse_loss with a bool target": lambda T: _grad(
        T, lambda a: F(T).mse_loss(a, T.tensor(False)), _leaf(T, 0.13, "float32")),
    "mse_loss dtype (0-d float64, float32)": lambda T: F(T).mse_loss(
        T.tensor(0.13, dtype=T.float64), T.tensor([0.13])),
    "lerp of int64 with a float 0-d weight tensor": lambda T: (
        T.lerp(T.tensor(2), T.tensor(2), 1e-3 ** T.tensor(2)),
        T.lerp(T.tensor([2]), T.tensor([3]), T.tensor(0.25, dtype=T.float64))),
    "lerp end of another dtype": lambda T: T.lerp(T.tensor([1.0]),
                                                  T.tensor([1.0], dtype=T.float64), 0.5),
    "index_select negative": lambda T: T.arange(6.0).reshape(3, 2).index_select(
        0, T.tensor([-1])),
    "gather out of range": lambda T: T.arange(6.0).reshape(3, 2).gather(
        1, T.tensor([[2], [0], [0]])),
    "embedding negative": lambda T: F(T).embedding(T.tensor([-1]), T.ones(3, 2)),
    "cross_entropy target out of range": lambda T: F(T).cross_entropy(T.ones(2, 3),
                                                                      T.tensor([0, 3])),
    "nll_loss negative target": lambda T: F(T).nll_loss(T.ones(2, 3), T.tensor([0, -2])),
}


def _run(T, case, cases=CASES):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's own warnings, and ours: not compared here
        try:
            out = cases[case](T)
            out = out if isinstance(out, tuple) else (out,)
            return [t.detach().numpy() for t in out], None
        except Exception as e:  # noqa: BLE001  (the class is what is compared)
            return None, e


def _builtin(e: BaseException) -> type:
    return next(c for c in type(e).__mro__ if c.__module__ == "builtins")


@pytest.mark.parametrize("case", list(CASES))
def test_matches_pytorch(case):
    want, want_err = _run(torch, case)
    got, got_err = _run(rg, case)
    if want_err is not None:
        assert got_err is not None, f"{case}: PyTorch raised {want_err!r}, remotegrad did not"
        assert isinstance(got_err, _builtin(want_err)), f"{case}: {got_err!r} vs {want_err!r}"
        return
    assert got_err is None, f"{case}: remotegrad raised {got_err!r}"
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        what = f"{case}[{k}]"
        assert (g.dtype, g.shape) == (w.dtype, w.shape), f"{what}: {g.dtype}{g.shape} vs " \
                                                          f"{w.dtype}{w.shape}"
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7, equal_nan=True, err_msg=what)
        if g.dtype.kind == "f":
            zeros = (w == 0) & (g == 0)
            assert np.array_equal(np.signbit(g[zeros]), np.signbit(w[zeros])), \
                f"{what}: sign of zero"


def _name_of(T, f, *xs):
    """The grad_fn name and requires_grad of f's first-order gradient (create_graph)."""
    (g, *_) = T.autograd.grad(f(*xs).sum(), xs, create_graph=True)
    return (None if g.grad_fn is None else type(g.grad_fn).__name__), g.requires_grad


def _twin_wrt_name(T):
    """d/dv3 where v1 = v3's expression feeds a log: the gradient is only v3's seed."""
    v0 = _leaf(T, 0.13)
    v1, v3 = v0 * 2, v0 * 2
    loss = (v1.abs() + 0.5).log().sum() + v3.sum()
    (g,) = T.autograd.grad(loss, [v3], create_graph=True)
    return (None if g.grad_fn is None else g.grad_fn.name()), g.requires_grad


# create_graph gradients whose last op the tester found apart from PyTorch's
NAMES = {
    "x ** y, for y": lambda T: _name_of(T, lambda y, x: x ** y, _leaf(T, [0.5, 1.5]),
                                        _leaf(T, [2.0, 3.0])),
    "silu": lambda T: _name_of(T, lambda x: F(T).silu(x), _leaf(T, [0.13, -1.0])),
    "expand to its own shape": lambda T: _name_of(T, lambda x: x.expand_as(x).tanh(),
                                                  _leaf(T, [0.13, -1.0])),
    "expand of a 0-d tensor (sum_to to no dims is a sum)": lambda T: [
        _name_of(T, f, _leaf(T, 0.13)) for f in (lambda x: x.expand_as(x).relu(),
                                                 lambda x: x.expand(()).atan(),
                                                 lambda x: x.broadcast_to(()).tanh())],
    "expand of nothing": lambda T: _name_of(T, lambda x: x.expand_as(x).tanh(),
                                            _leaf(T, np.zeros(0))),
    "squeeze of a 0-d tensor": lambda T: _name_of(
        T, lambda x: F(T).mse_loss(x.squeeze(-1), x.squeeze(-1)) ** 2, _leaf(T, 0.13)),
    "squeeze of a size-1 dim": lambda T: _name_of(T, lambda x: x.squeeze(-1).sigmoid(),
                                                  _leaf(T, [0.13])),
    "batch @ vector, for the batch (PyTorch's fold: a view last)": lambda T: [
        _name_of(T, lambda x, y: x @ y, _leaf(T, np.ones(s)), _leaf(T, [0.5, -1.5]))
        for s in ((2, 3, 2), (0, 3, 2), (2, 1, 3, 2))],
    "stack's piece (PyTorch's unbind: a select)": lambda T: _name_of(
        T, lambda x, y: T.stack([x, y]).cos(), _leaf(T, [0.13]), _leaf(T, [0.38])),
    "cosine_similarity of a 0-d x with itself (no expand to its own shape)": lambda T:
        _name_of(T, lambda x: F(T).cosine_similarity(x, x, -1), _leaf(T, 0.13)),
    "cosine_similarity of x with itself": lambda T: _name_of(
        T, lambda x: F(T).cosine_similarity(x, x, -1), _leaf(T, [0.13])),
    "gradient wrt a twin of a used expression": lambda T: _twin_wrt_name(T),
    "addcdiv's tensor1 of a narrower dtype": lambda T: _name_of(
        T, lambda t1: T.addcdiv(T.ones(1, dtype=T.float64), t1, T.full((1,), 0.5,
                                                                     dtype=T.float64)),
        _leaf(T, [0.13], "float32")),
    "addcdiv's gradients (PyTorch's formulas: a mul last)": lambda T: [
        _name_of(T, lambda t1, t2, x=x: T.addcdiv(x, t1, t2, value=2), _leaf(T, [0.5]),
                 _leaf(T, [-0.0])) for x in (T.ones(1), _leaf(T, [0.3]))] + [
        _name_of(T, lambda t2, t1: T.addcdiv(T.ones(1), t1, t2, value=2), _leaf(T, [-0.0]),
                 _leaf(T, [0.5]))],
    "addcmul's tensor2 of a narrower dtype": lambda T: _name_of(
        T, lambda t2: T.addcmul(T.ones(1, dtype=T.float64), T.full((1,), 0.5,
                                                                 dtype=T.float64), t2),
        _leaf(T, [0.13], "float32")),
    "lerp of a rounded quotient": lambda T: _name_of(
        T, lambda x: (lambda q: T.lerp(q, q, q))(T.div(x, x, rounding_mode="trunc")),
        _leaf(T, 0.13)),
    "var with no degrees of freedom through x[..., :1]": lambda T: _name_of(
        T, lambda x: x[..., :1].var(-1, correction=2, keepdim=True), _leaf(T, [0.13])),
    "square through aliasing keys": lambda T: [_name_of(T, lambda x, f=f: f(x) * f(x),
                                                        _leaf(T, [[0.13, 2.0]]))
                                               for f in (lambda x: x[..., :2],
                                                         lambda x: x[:, ...], lambda x: x[...],
                                                         lambda x: x[0:1, ::1])],
    "amax and amin through their seed (PyTorch's (g / count) * mask)": lambda T: [
        _name_of(T, lambda x, w, f=f: f(x) * w, _leaf(T, [[1.0, 3.0], [3.0, 2.0]]),
                 _leaf(T, 0.5)) for f in (lambda x: x.amax(), lambda x: x.amin(1))],
    "max and min over a dim through their seed (PyTorch's scatter)": lambda T: [
        _name_of(T, lambda x, w, f=f: f(x) * w, _leaf(T, [[1.0, 3.0], [3.0, 2.0]]),
                 _leaf(T, 0.5)) for f in (lambda x: x.max(1)[0], lambda x: x.min(0)[0])],
    "cumsum of a 0-d tensor and over a dim of one element (PyTorch's passes its seed)":
        lambda T: [_name_of(T, lambda x, w, d=d: x.cumsum(d) * w, _leaf(T, v), _leaf(T, 0.5))
                   for v, d in ((0.13, 0), ([[0.13, 2.0]], 0), ([[0.13], [2.0]], 1))],
    "fill_ of a function of x": lambda T: _name_of(T, lambda x: x.abs().log1p().fill_(1.5),
                                                   _leaf(T, 0.13)),
    "zero_ of x / x beside a log": lambda T: _name_of(
        T, lambda x: (x / x).zero_().relu() + (x.abs() + 0.5).log2(), _leaf(T, 0.13)),
}


@pytest.mark.parametrize("case", list(NAMES))
def test_grad_fn_matches_pytorch(case):
    assert NAMES[case](rg) == NAMES[case](torch)


def _node_of(T, f, *xs):
    out = f(*xs)
    return None if out.grad_fn is None else out.grad_fn.name(), out.requires_grad


def _matmul_names(T, a_shape, b_shape):
    """The last node of a @ b for each operand needing a gradient (one, other, both)."""
    return [_node_of(T, T.matmul, T.ones(a_shape, requires_grad=ra),
                     T.ones(b_shape, requires_grad=rb))
            for ra, rb in ((True, False), (False, True), (True, True))]


# results whose last op the tester found apart from PyTorch's
OUT_NAMES = {
    # a matrix (or one batch) times a batch is folded when the matrix needs a gradient
    "matrix @ batch": lambda T: _matmul_names(T, (2, 3), (1, 3, 2)),
    "one batch @ batch": lambda T: _matmul_names(T, (1, 2, 3), (4, 3, 2)),
    "row @ batch": lambda T: _matmul_names(T, (1, 3), (4, 3, 2)),
    "matrix @ batch of columns": lambda T: _matmul_names(T, (2, 3), (4, 3, 1)),
    "matrix @ empty batch": lambda T: _matmul_names(T, (2, 3), (0, 3, 2)),
    "matrix @ 4-d batch": lambda T: _matmul_names(T, (2, 3), (2, 1, 3, 2)),
    "one batch @ 4-d batch": lambda T: _matmul_names(T, (1, 2, 3), (2, 1, 3, 2)),
    "linear without bias of a vector and of a batch": lambda T: [
        _node_of(T, F(T).linear, T.ones(s, requires_grad=True), T.ones(2, 3))
        for s in ((3,), (2, 3), (5, 2, 3))],
    "in-place ops casting back": lambda T: [
        _node_of(T, lambda a, b, f=f: f(b * 1, a),
                 T.ones(2, dtype=T.float64, requires_grad=True),
                 T.ones(2, requires_grad=True))
        for f in (lambda x, a: x.mul_(a), lambda x, a: x.add_(a, alpha=2),
                  lambda x, a: x.addcmul_(a, a), lambda x, a: x.lerp_(a.float(), 0.3))],
    # a 0-d x[...] = value is copy_ (same sizes: CopyBackwards), not fill_ (the tester's
    # views); a 0-d movedim is an alias
    "x[...] = value of a 0-d x": lambda T: [
        _class_of(lambda x, v=v: _set_all(x * 3, v(x)), _leaf(T, 0.13))
        for v in (lambda x: x * 2, lambda x: 2.0)],
    "movedim of a 0-d x": lambda T: _class_of(lambda x: x.movedim(0, -1), _leaf(T, 0.13)),
    # the value loses its leading size-1 dims, then broadcasts; over all of x a copy
    "x[key] = value with leading size-1 dims": lambda T: [
        _set_case(T, key, value) for key, value in (
            (Ellipsis, [[0.5]]), (0, [[0.5, 1.5]]), (slice(None), [[[0.5, 1.5]]]),
            (Ellipsis, [0.5]), (slice(None), [[0.5, 1.5]]), (slice(0, 1), [[0.5]]))],
}


def _set_case(T, key, value):
    """x[key] = value (x (2,) or (2, 2), computed): its grad_fn, values, value's grad."""
    v = T.tensor(value, requires_grad=True)
    x = T.zeros((2, 2) if key == 0 else 2, requires_grad=True) * 1
    x[key] = v * 1
    x.sum().backward()
    return type(x.grad_fn).__name__, x.tolist(), v.grad.tolist()


def _class_of(f, *xs):
    """The class name of f's result's grad_fn (PyTorch's name() of CopyBackwards is
    qualified)."""
    return type(f(*xs).grad_fn).__name__


def _set_all(x, value):
    x[...] = value
    return x


@pytest.mark.parametrize("case", list(OUT_NAMES))
def test_result_node_matches_pytorch(case):
    assert OUT_NAMES[case](rg) == OUT_NAMES[case](torch)


# PyTorch's messages for the mistakes the tester made (class and text)
MESSAGES = {
    "matmul dtypes": lambda T: T.matmul(T.zeros(0, 3, dtype=T.int64), T.zeros(3, 2)),
    "dot dtypes": lambda T: T.matmul(T.zeros(0), T.zeros(0, dtype=T.float64)),
    "mv dtypes": lambda T: T.matmul(T.zeros(0, 3), T.zeros(3, dtype=T.float64)),
    "bmm dtypes": lambda T: T.matmul(T.zeros(2, 2, 3), T.zeros(2, 3, 2, dtype=T.float64)),
    "linear dtypes": lambda T: F(T).linear(T.zeros(0, 3), T.zeros(2, 3, dtype=T.float64)),
    "linear bias dtype": lambda T: F(T).linear(T.zeros(2, 3), T.zeros(2, 3),
                                               T.zeros(2, dtype=T.float64)),
    "linear of bools": lambda T: F(T).linear(T.tensor([[False]]), T.tensor([[False]])),
    "linear of a bool vector": lambda T: F(T).linear(T.tensor([False]), T.tensor([[True]])),
    "mm of a vector": lambda T: T.mm(T.zeros(3), T.zeros(3, 3)),
    "bmm of a matrix": lambda T: T.bmm(T.zeros(2, 3, 4), T.zeros(3, 4)),
    "dot of a matrix": lambda T: T.dot(T.zeros(2, 3), T.zeros(3)),
    "nll_loss of ints": lambda T: F(T).nll_loss(T.zeros(2, 3, dtype=T.int64),
                                                T.zeros(2, dtype=T.int64)),
    "nll_loss, float target": lambda T: F(T).nll_loss(T.zeros(2, 3), T.zeros(2)),
    "nll_loss of (0, C, d), 0-d target": lambda T: F(T).nll_loss(T.zeros(0, 1, 1),
                                                                 T.tensor(0)),
    "nll_loss2d, 2-d target": lambda T: F(T).nll_loss(T.zeros(2, 2, 3, 4),
                                                      T.zeros(2, 3, dtype=T.int64)),
    "nll_loss2d, target of another size": lambda T: F(T).nll_loss(
        T.zeros(2, 2, 3, 4), T.zeros(2, 3, 5, dtype=T.int64)),
    "cross_entropy of nothing, 0-d float target": lambda T: F(T).cross_entropy(
        T.zeros(0, 1), T.tensor(0.5)),
    # a loss's weight that requires grad: PyTorch's kernels have no derivative for it
    "nll_loss, a weight that requires grad": lambda T: F(T).nll_loss(
        T.zeros(2, 3, requires_grad=True), T.zeros(2, dtype=T.int64),
        T.ones(3, requires_grad=True)),
    "cross_entropy of (N, C, d), a weight that requires grad": lambda T: F(T).cross_entropy(
        T.zeros(2, 3, 4), T.zeros(2, 4, dtype=T.int64), T.ones(3, requires_grad=True)),
    "binary_cross_entropy, a weight that requires grad": lambda T: F(
        T).binary_cross_entropy(T.full((2,), 0.5), T.full((2,), 0.5),
                                T.ones(2, requires_grad=True)),
    "lerp of int64, a float weight with dims": lambda T: T.lerp(
        T.tensor([2]), T.tensor([3]), T.tensor([0.5])),  # the dtype check comes first
    "lerp of bools, the weight's gradient (end - start of bools)": lambda T: (
        lambda w: T.autograd.grad(T.lerp(T.tensor([True]), T.tensor([False]), w).sum(), w))(
        T.tensor(0.3, requires_grad=True)),
    "cross_entropy of a 1-D input, 2-element target": lambda T: F(T).cross_entropy(
        T.zeros(3), T.tensor([0, 1])),  # PyTorch's ValueError
    # bmm's kernel refuses a bool first operand before it compares the dtypes
    "matmul of a 3-D bool by a 3-D float": lambda T: T.matmul(
        T.ones(1, 3, 3, dtype=T.bool), T.ones(1, 3, 3)),
    "matmul of a 2-D bool by a 4-D int": lambda T: T.matmul(
        T.ones(2, 3, dtype=T.bool), T.ones(2, 1, 3, 3, dtype=T.int64)),
    "matmul of a 1-D float by a 3-D bool": lambda T: T.matmul(
        T.ones(3), T.ones(1, 3, 3, dtype=T.bool)),
    "matmul of a 3-D int by a 1-D float": lambda T: T.matmul(  # addmv's message
        T.ones(1, 3, 3, dtype=T.int64), T.ones(3)),
}


@pytest.mark.parametrize("case", list(MESSAGES))
def test_message_is_pytorchs(case):
    _, want = _run(torch, case, MESSAGES)
    _, got = _run(rg, case, MESSAGES)
    assert want is not None and got is not None
    assert isinstance(got, _builtin(want)) and str(got) == str(want)


def test_pow_of_an_int_base_is_float64_exact():
    """d/dy 2 ** y logs the base in the result's dtype (float64 here, not float32)."""
    def grads(T):
        y = _leaf(T, [-0.01, -0.57, 0.41])
        return [t.detach().numpy() for t in _second(T, lambda y: 2 ** y, y)]
    for got, want in zip(grads(rg), grads(torch)):
        np.testing.assert_allclose(got, want, rtol=1e-13)


NEG_INF_NORM = [[1.0, -3.0, 3.0, 0.5], [0.0, 0.0, 0.0], [float("nan"), 1.0, 2.0],
                [float("inf"), -float("inf"), 1.0], [-0.0, 0.0, -1e-300], [2.0, -2.0, -5.0]]


@pytest.mark.parametrize("data", NEG_INF_NORM, ids=str)
@pytest.mark.parametrize("dim", [None, 1])
def test_norm_of_minus_inf(data, dim):
    """norm(x, -inf) is min |x| with PyTorch's infinity-norm gradient (the generic
    sum(|x| ** p) ** (1 / p) gave 1 for every x, its gradient NaN)."""
    def run(lib):
        x = lib.tensor([data], dtype=lib.float64, requires_grad=True)
        out = lib.norm(x, -math.inf) if dim is None else lib.norm(x, -math.inf, dim)
        (g,) = lib.autograd.grad(out.sum(), x)
        return out.detach().numpy(), g.numpy()
    for ours, theirs in zip(run(rg), run(torch)):
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))


@pytest.mark.parametrize("expression", [
    "T.norm(T.empty(0), -math.inf)", "T.norm(T.empty(2, 0), math.inf, 1)",
    "T.norm(T.empty(2, 0, 3), -math.inf, (1, 2))", "T.norm(T.empty(2, 0, 3), math.inf, -2)",
    "T.norm(T.empty(2, 0, 3), -math.inf, (0, 2))"])
def test_infinity_norm_of_an_empty_dimension(expression):
    """max and min have no identity: PyTorch's RuntimeError (was numpy's ValueError)."""
    def outcome(lib):
        try:
            return repr(eval(expression, {"T": lib, "math": math}))
        except Exception as e:  # noqa: BLE001 (the same error is the expected outcome)
            return f"{type(e).__name__}: {e}"
    assert outcome(rg) == outcome(torch)
