"""remotegrad.func against torch.func, in float64: every transform on elementwise, matmul
and reduction functions, nested transforms, an nn.Module through functional_call, and
per-sample gradients (vmap over grad) read in one round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.func as tf

import remotegrad as rg
import remotegrad.func as rf

RNG = np.random.default_rng(20261201)
A = RNG.standard_normal((2, 3))
V = RNG.standard_normal((2, 3))


def pair(a):
    return rg.tensor(np.asarray(a, dtype=np.float64)), torch.tensor(np.asarray(a, np.float64))


def close(r, t, what="result"):
    """Same tree structure, same values (float64 tolerances)."""
    if isinstance(t, torch.Tensor):
        assert isinstance(r, rg.Tensor), (what, type(r))
        assert tuple(r.shape) == tuple(t.shape), (what, r.shape, t.shape)
        np.testing.assert_allclose(r.detach().numpy(), t.detach().numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=what)
    elif isinstance(t, dict):
        assert isinstance(r, dict) and list(r) == list(t), (what, r, t)
        for k in t:
            close(r[k], t[k], f"{what}[{k!r}]")
    elif isinstance(t, (tuple, list)):
        assert type(r) is type(t) and len(r) == len(t), (what, type(r), type(t))
        for i, (a, b) in enumerate(zip(r, t)):
            close(a, b, f"{what}[{i}]")
    else:
        assert r == t, (what, r, t)


# Functions written once for both libraries: `m` is remotegrad or torch.
def elementwise(m, x):
    return (x.sin() * x.exp()).tanh() + x * x


def matmul(m, x):
    w = m.tensor(np.arange(12.0).reshape(3, 4) / 10)
    return (x @ w).relu() + x @ x.T @ x @ w


def reductions(m, x):
    return (x * x).sum(1) / x.exp().mean() + x.prod(0)[:2]


FUNCS = [elementwise, matmul, reductions]


def both(fn):
    return (lambda *a: fn(rg, *a)), (lambda *a: fn(torch, *a))


def scalar(fn):
    return lambda m, *a: (fn(m, *a) ** 2).sum()


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_grad_and_value(fn):
    r, t = both(scalar(fn))
    x, xt = pair(A)
    close(rf.grad(r)(x), tf.grad(t)(xt))
    close(rf.grad_and_value(r)(x), tf.grad_and_value(t)(xt))
    assert not rf.grad(r)(x).requires_grad


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_vjp(fn):
    r, t = both(fn)
    x, xt = pair(A)
    out, vjp_r = rf.vjp(r, x)
    out_t, vjp_t = tf.vjp(t, xt)
    close(out, out_t)
    u, ut = pair(RNG.standard_normal(tuple(out_t.shape)))
    close(vjp_r(u), vjp_t(ut))
    close(vjp_r(u * 2), vjp_t(ut * 2))  # vjp_fn may be called again


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_jvp_and_linearize(fn):
    r, t = both(fn)
    (x, xt), (v, vt) = pair(A), pair(V)
    close(rf.jvp(r, (x,), (v,)), tf.jvp(t, (xt,), (vt,)))
    out, jvp_fn = rf.linearize(r, x)
    close(out, t(xt))
    close(jvp_fn(v), tf.jvp(t, (xt,), (vt,))[1])


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_jacrev_jacfwd(fn):
    r, t = both(fn)
    x, xt = pair(A)
    close(rf.jacrev(r)(x), tf.jacrev(t)(xt))
    close(rf.jacfwd(r)(x), tf.jacfwd(t)(xt))


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_hessian(fn):
    r, t = both(scalar(fn))
    x, xt = pair(A)
    close(rf.hessian(r)(x), tf.hessian(t)(xt))


def test_argnums_tuples_pytrees_and_aux():
    def f(m, x, d, k):
        out = (x.sin() * d["a"]).sum() + (d["b"] * x).exp().sum() * k
        return out, {"twice": x * 2, "k": d["a"] * k}

    r, t = both(f)
    (x, xt), (a, at), (b, bt) = pair(A), pair(V), pair(A * V)
    args_r, args_t = (x, {"a": a, "b": b}, 3.0), (xt, {"a": at, "b": bt}, 3.0)
    for argnums in (0, 1, (0, 1), (1, 0), -2):
        close(rf.grad(r, argnums=argnums, has_aux=True)(*args_r),
              tf.grad(t, argnums=argnums, has_aux=True)(*args_t), f"grad {argnums}")
    close(rf.grad_and_value(r, argnums=(0, 1), has_aux=True)(*args_r),
          tf.grad_and_value(t, argnums=(0, 1), has_aux=True)(*args_t))
    close(rf.jacrev(r, argnums=(0, 1), has_aux=True)(*args_r),
          tf.jacrev(t, argnums=(0, 1), has_aux=True)(*args_t))
    close(rf.jacfwd(r, argnums=(1, 0), has_aux=True)(*args_r),
          tf.jacfwd(t, argnums=(1, 0), has_aux=True)(*args_t))
    close(rf.hessian(lambda *a: r(*a)[0], argnums=(0, 1))(*args_r),
          tf.hessian(lambda *a: t(*a)[0], argnums=(0, 1))(*args_t))


def test_outputs_as_trees_and_unused_inputs():
    def f(m, x, y):
        return {"u": x * 2, "v": (x.exp().sum(), x @ x.T)}

    r, t = both(f)
    (x, xt), (y, yt) = pair(A), pair(V)
    close(rf.jacrev(r, argnums=(0, 1))(x, y), tf.jacrev(t, argnums=(0, 1))(xt, yt))
    close(rf.jacfwd(r, argnums=(0, 1))(x, y), tf.jacfwd(t, argnums=(0, 1))(xt, yt))
    out, fn = rf.vjp(r, x, y)
    out_t, fn_t = tf.vjp(t, xt, yt)
    cot = tf.vjp(t, xt, yt)[0]
    close(fn(rf._pytree.tree_map(lambda c: rg.tensor(c.numpy()), cot)), fn_t(cot))
    close(rf.jvp(r, (x, y), (y, x)), tf.jvp(t, (xt, yt), (yt, xt)))
    close(rf.grad(lambda x, y: (y * 0).sum() + x.sum(), argnums=1)(x, y),
          tf.grad(lambda x, y: (y * 0).sum() + x.sum(), argnums=1)(xt, yt))
    close(rf.grad(lambda x, y: x.sum(), argnums=1)(x, y),
          tf.grad(lambda x, y: x.sum(), argnums=1)(xt, yt))


def test_nested_transforms():
    r, t = both(elementwise)
    x, xt = pair(A[0])
    close(rf.jacrev(rf.jacrev(r))(x), tf.jacrev(tf.jacrev(t))(xt))
    close(rf.jacfwd(rf.jacrev(r))(x), tf.jacfwd(tf.jacrev(t))(xt))
    close(rf.jacrev(rf.jacfwd(r))(x), tf.jacrev(tf.jacfwd(t))(xt))
    g = rf.grad(lambda x: rf.grad(lambda y: (y.sin() * x).sum())(x).pow(2).sum())
    gt = tf.grad(lambda x: tf.grad(lambda y: (y.sin() * x).sum())(x).pow(2).sum())
    close(g(x), gt(xt))
    s, st = pair(np.array(0.7))
    cube = lambda z: z.sin() * z ** 3  # noqa: E731
    close(rf.grad(rf.grad(rf.grad(cube)))(s), tf.grad(tf.grad(tf.grad(cube)))(st))
    close(rf.vmap(rf.jacrev(r))(pair(A)[0]), tf.vmap(tf.jacrev(t))(pair(A)[1]))
    close(rf.jvp(rf.grad(lambda z: (z.exp() * z).sum()), (x,), (x,)),
          tf.jvp(tf.grad(lambda z: (z.exp() * z).sum()), (xt,), (xt,)))


def test_closures_and_ordinary_autograd():
    """A closed-over tensor is a constant to the transform, a tensor that requires grad
    keeps the caller's graph: backward through a transform reaches it."""
    (x, xt), (w, wt) = pair(A), pair(V)
    w.requires_grad_(True)
    wt.requires_grad_(True)
    g = rf.grad(lambda y: (w * y.sin()).sum())(x)
    gt = tf.grad(lambda y: (wt * y.sin()).sum())(xt)
    assert g.requires_grad and gt.requires_grad
    close(g, gt)
    (g * g).sum().backward()
    (gt * gt).sum().backward()
    close(w.grad, wt.grad)
    h = rf.grad(lambda y: (y * y * y).sum())(w)
    ht = tf.grad(lambda y: (y * y * y).sum())(wt)
    close(rg.autograd.grad(h.sum(), w)[0], torch.autograd.grad(ht.sum(), wt)[0])
    close(rf.grad(lambda y: (y * x).sum())(x), tf.grad(lambda y: (y * xt).sum())(xt))


def test_vmap_dims():
    X, Xt = pair(RNG.standard_normal((4, 2, 3)))
    y, yt = pair(RNG.standard_normal(3))
    f = lambda a, b: (a * b).sum(-1)  # noqa: E731
    close(rf.vmap(f)(X, X), tf.vmap(f)(Xt, Xt))
    close(rf.vmap(f, in_dims=(0, None))(X, y), tf.vmap(f, in_dims=(0, None))(Xt, yt))
    close(rf.vmap(f, in_dims=(2, None), out_dims=1)(X, y[:2]),
          tf.vmap(f, in_dims=(2, None), out_dims=1)(Xt, yt[:2]))
    close(rf.vmap(f, in_dims=-1, out_dims=-1)(X, X), tf.vmap(f, in_dims=-1, out_dims=-1)(Xt, Xt))
    close(rf.vmap(rf.vmap(f, in_dims=(0, None)), in_dims=(1, None))(X, y),
          tf.vmap(tf.vmap(f, in_dims=(0, None)), in_dims=(1, None))(Xt, yt))
    g = lambda d, k=1.0: (d["a"].exp() * k, y)  # noqa: E731
    gt = lambda d, k=1.0: (d["a"].exp() * k, yt)  # noqa: E731
    close(rf.vmap(g, in_dims=({"a": 1},), out_dims=(0, None))({"a": X}, k=2.0),
          tf.vmap(gt, in_dims=({"a": 1},), out_dims=(0, None))({"a": Xt}, k=2.0))
    close(rf.vmap(g)({"a": X}), tf.vmap(gt)({"a": Xt}))  # an unbatched output is expanded
    empty, empty_t = pair(np.zeros((0, 3)))
    close(rf.vmap(lambda a: a * 2, out_dims=1)(empty),
          tf.vmap(lambda a: a * 2, out_dims=1)(empty_t))


def test_vmap_randomness():
    X = rg.tensor(np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="randomness error mode"):
        rf.vmap(lambda a: a + rg.randn(2))(X)
    same = rf.vmap(lambda a: a + rg.randn(2), randomness="same")(X).numpy()
    assert (same == same[0]).all()
    different = rf.vmap(lambda a: a + rg.randn(2), randomness="different")(X).numpy()
    assert not (different == different[0]).all()


class Net(rg.nn.Module):
    def __init__(self, nn):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 5), nn.Linear(5, 2)
        self.register_buffer("scale", rg.ones(5))

    def forward(self, x):
        return self.fc2((self.fc1(x) * self.scale).tanh())


class TorchNet(torch.nn.Module):
    forward = Net.forward

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(3, 5), torch.nn.Linear(5, 2)
        self.register_buffer("scale", torch.ones(5))


def _state():
    rng = np.random.default_rng(5)
    shapes = {"fc1.weight": (5, 3), "fc1.bias": (5,), "fc2.weight": (2, 5), "fc2.bias": (2,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    return params, {"scale": rng.standard_normal(5)}


def _per_sample(lib, func, F, model, params, buffers, X, Y):
    def loss(p, x, y):
        out = func.functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(out, y.unsqueeze(0))
    return func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, X, Y)


def _inputs():
    rng = np.random.default_rng(6)
    return rng.standard_normal((6, 3)), rng.integers(0, 2, 6)


def test_functional_call_and_per_sample_gradients():
    p, b = _state()
    X, Y = _inputs()
    model, model_t = Net(rg.nn), TorchNet()
    pr = {k: rg.tensor(v) for k, v in p.items()}
    pt = {k: torch.tensor(v) for k, v in p.items()}
    br, bt = {k: rg.tensor(v) for k, v in b.items()}, {k: torch.tensor(v) for k, v in b.items()}
    close(rf.functional_call(model, (pr, br), rg.tensor(X)),
          tf.functional_call(model_t, (pt, bt), torch.tensor(X)))
    got = _per_sample(rg, rf, rg.nn.functional, model, pr, br, rg.tensor(X), rg.tensor(Y))
    want = _per_sample(torch, tf, torch.nn.functional, model_t, pt, bt, torch.tensor(X),
                       torch.tensor(Y))
    close(got, want)
    assert model.scale.dtype == model.fc1.weight.dtype == rg.float32  # left as it was
    assert model.scale.numpy().tolist() == [1.0] * 5
    # the mean of the per-sample gradients is the batch gradient
    full = rf.grad(lambda q: rg.nn.functional.cross_entropy(
        rf.functional_call(model, (q, br), rg.tensor(X)), rg.tensor(Y)))(pr)
    for k in p:
        np.testing.assert_allclose(got[k].numpy().mean(0), full[k].numpy(), rtol=1e-10)


def test_per_sample_gradients_keep_the_parameters_graph():
    """Parameters that require grad (not detached): the per-sample gradients stay
    differentiable with respect to them, as with torch.func."""
    p, b = _state()
    X, Y = _inputs()
    pr = {k: rg.tensor(v, requires_grad=True) for k, v in p.items()}
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    br, bt = {k: rg.tensor(v) for k, v in b.items()}, {k: torch.tensor(v) for k, v in b.items()}
    got = _per_sample(rg, rf, rg.nn.functional, Net(rg.nn), pr, br, rg.tensor(X), rg.tensor(Y))
    want = _per_sample(torch, tf, torch.nn.functional, TorchNet(), pt, bt, torch.tensor(X),
                       torch.tensor(Y))
    close(got, want)
    assert got["fc1.weight"].requires_grad and want["fc1.weight"].requires_grad
    (got["fc1.weight"] ** 2).sum().backward()
    (want["fc1.weight"] ** 2).sum().backward()
    for k in p:
        close(pr[k].grad, pt[k].grad, k)


def test_vmap_slices_of_different_structure():
    with pytest.raises(ValueError, match="outputs of different structures"):
        rf.vmap(lambda a: (a,) if a.sum().item() > 0 else (a, a))(rg.tensor([[1.0], [-1.0]]))


def test_functional_call_options():
    model, model_t = Net(rg.nn), TorchNet()
    p, b = _state()
    x = np.ones((1, 3))
    for lib, m, f in ((rg, model, rf), (torch, model_t, tf)):
        with pytest.raises(RuntimeError) as e:
            f.functional_call(m, {"fc1.weight": lib.tensor(p["fc1.weight"]), "zz": lib.ones(1)},
                              lib.tensor(x), strict=True)
        assert str(e.value).startswith(f"Error(s) in reparametrizing for {type(m).__name__}:"
                                       "\n\tUnexpected key(s): 'zz'.\n\tMissing key(s): "
                                       "'fc1.bias', 'fc2.bias', 'fc2.weight', 'scale'."), e.value
        with pytest.raises(ValueError, match=r"\['scale'\] appeared in multiple dictionaries"):
            f.functional_call(m, ({"scale": lib.ones(5)}, {"scale": lib.ones(5)}), lib.tensor(x))
    tied = rg.nn.Linear(2, 2, bias=False)
    tied_t = torch.nn.Linear(2, 2, bias=False)
    seq, seq_t = rg.nn.Sequential(tied, tied), torch.nn.Sequential(tied_t, tied_t)
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    close(rf.functional_call(seq, {"0.weight": rg.tensor(w)}, rg.ones(2, dtype=rg.float64)),
          tf.functional_call(seq_t, {"0.weight": torch.tensor(w)},
                             torch.ones(2, dtype=torch.float64)))


def test_stack_module_state_ensemble():
    models = [rg.nn.Linear(3, 2).double() for _ in range(3)]
    params, buffers = rf.stack_module_state(models)
    assert params["weight"].shape == (3, 2, 3) and params["weight"].requires_grad
    x = rg.tensor(A[0])
    base = models[0]
    out = rf.vmap(lambda p: rf.functional_call(base, p, (x,)))(params)
    for i, m in enumerate(models):
        np.testing.assert_allclose(out[i].detach().numpy(), m(x).detach().numpy(), rtol=1e-12)
    assert not out.requires_grad or out.grad_fn is not None


# --- errors: PyTorch's classes and messages ---------------------------------------------------
def _same_error(call_r, call_t):
    with pytest.raises(Exception) as want:
        call_t()
    with pytest.raises(type(want.value)) as got:
        call_r()
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("case", [
    lambda f, m, x: f.grad(lambda x: x)(x),
    lambda f, m, x: f.grad(lambda x: 1.0)(x),
    lambda f, m, x: f.grad(lambda x: x.sum(), has_aux=True)(x),
    lambda f, m, x: f.grad(lambda x: x.sum(), argnums=2)(x),
    lambda f, m, x: f.grad(lambda x: x.sum(), argnums=1.0)(x),
    lambda f, m, x: f.grad(lambda x: x.sum(), argnums=())(x),
    lambda f, m, x: f.grad(lambda x, y: x.sum(), argnums=(0, 0))(x, x),
    lambda f, m, x: f.grad(lambda x: x)(3.0),
    lambda f, m, x: f.vjp(lambda a: 3, x),
    lambda f, m, x: f.vjp(lambda a: a * 2, x)[1]((m.ones(2, 3, dtype=m.float64),)),
    lambda f, m, x: f.vjp(lambda a: a * 2, x)[1](m.ones(4, dtype=m.float64)),
    lambda f, m, x: f.jacrev(lambda a: a, has_aux=True)(x),
    lambda f, m, x: f.jacfwd(lambda a: 3)(x),
    lambda f, m, x: f.jvp(lambda a: a, x, x),
    lambda f, m, x: f.jvp(lambda a: a, (x,), (x, x)),
    lambda f, m, x: f.jvp(lambda a: a, (x,), (1.0,)),
    lambda f, m, x: f.jvp(lambda a: a, (x,), (m.ones(4, dtype=m.float64),)),
    lambda f, m, x: f.jacfwd(lambda a: a, randomness="foo")(x),
    lambda f, m, x: f.vmap(lambda a: a, in_dims=None)(x),
    lambda f, m, x: f.vmap(lambda a: a, in_dims=(None,))(x),
    lambda f, m, x: f.vmap(lambda a, b: a * b)(x, m.ones(5, 3)),
    lambda f, m, x: f.vmap(lambda a, b: a * b)(x, 3.0),
    lambda f, m, x: f.vmap(lambda a, b: a * b, in_dims=(0,))(x, x),
    lambda f, m, x: f.vmap(lambda a: a, in_dims=2)(x),
    lambda f, m, x: f.vmap(lambda a: 3)(x),
    lambda f, m, x: f.vmap(lambda a: a, out_dims=None)(x),
    lambda f, m, x: f.vmap(lambda a: (a, a), out_dims=(0, 1, 2))(x),
    lambda f, m, x: f.vmap(lambda a: a)(m.tensor(1.0)),
    lambda f, m, x: f.vmap(lambda: x)(),
])
def test_errors_match_pytorch(case):
    x, xt = pair(A)
    _same_error(lambda: case(rf, rg, x), lambda: case(tf, torch, xt))


# --- round trips ---------------------------------------------------------------------------
def test_per_sample_gradients_are_one_round_trip(requests):
    p, b = _state()
    X, Y = _inputs()
    pr = {k: rg.tensor(v) for k, v in p.items()}
    br = {k: rg.tensor(v) for k, v in b.items()}
    got = _per_sample(rg, rf, rg.nn.functional, Net(rg.nn), pr, br, rg.tensor(X),
                      rg.tensor(Y))
    assert requests == []  # nothing computed while recording
    values = {k: t.numpy() for k, t in got.items()}
    assert len(requests) == 1
    assert values["fc1.weight"].shape == (6, 5, 3)


def test_jacobians_and_hessians_are_one_round_trip(requests):
    x = rg.tensor(A)
    jac = rf.jacfwd(rf.jacrev(lambda z: (z.sin() * z).sum(1)))(x)
    jac.numpy()
    h = rf.hessian(lambda z: (z.exp() * z).sum(), argnums=(0,))(x)
    h[0][0].numpy()
    assert len(requests) == 2


ALIASED = """
import sys
import remotegrad
sys.modules["torch"] = remotegrad          # a program written for PyTorch, unchanged
import torch
import torch.func
from torch.func import grad, vmap
assert torch.func is remotegrad.func and grad is remotegrad.func.grad
x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
print(vmap(grad(lambda r: (r * r).sum()))(x).tolist())
"""


def test_import_torch_func_under_the_alias():
    import os
    import subprocess
    import sys
    env = {**os.environ, "REMOTEGRAD_ADDR": "local"}
    out = subprocess.run([sys.executable, "-c", ALIASED], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[[2.0, 4.0], [6.0, 8.0]]"]
