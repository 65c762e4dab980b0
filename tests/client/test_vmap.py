"""vmap by batching rules against torch.func.vmap (float64): random programs over many
ops, their per-sample gradients (vmap over grad, with respect to the batched input and to
unbatched parameters), in_dims/out_dims and nested vmap; the recorded graph is one
slice's size (one node per op, not B); what makes vmap fall back per slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.func as tf

import remotegrad as rg
import remotegrad.func as rf
from remotegrad.func import _batching

N = 5  # a slice is (4, N); parameters W (N, N), w (N,)


def _ops(lib):
    F = lib.nn.functional
    return [
        ("sin", lambda a, W, w: a.sin()),
        ("tanh", lambda a, W, w: a.tanh()),
        ("exp", lambda a, W, w: (a * 0.3).exp()),
        ("sigmoid", lambda a, W, w: a.sigmoid()),
        ("relu", lambda a, W, w: F.relu(a) + a * 0.1),
        ("gelu", lambda a, W, w: F.gelu(a)),
        ("softplus", lambda a, W, w: F.softplus(a)),
        ("abs", lambda a, W, w: a.abs() + 0.5),
        ("square", lambda a, W, w: a.square() * 0.2),
        ("add_w", lambda a, W, w: a + w),
        ("mul_w", lambda a, W, w: a * w),
        ("sub_scalar", lambda a, W, w: 1.5 - a),
        ("matmul", lambda a, W, w: a @ W),
        ("linear", lambda a, W, w: F.linear(a, W, w)),
        ("mv", lambda a, W, w: (W @ w).unsqueeze(0) * a),
        ("where", lambda a, W, w: lib.where(a > 0, a, w * a)),
        ("sum_keep", lambda a, W, w: a - a.sum(-1, keepdim=True) * 0.1),
        ("mean", lambda a, W, w: a * a.mean()),
        ("softmax", lambda a, W, w: a.softmax(-1)),
        ("log_softmax", lambda a, W, w: a.log_softmax(-1)),
        ("max", lambda a, W, w: a - a.max(-1, keepdim=True).values),
        ("amax0", lambda a, W, w: a + a.amax(0)),
        ("transpose", lambda a, W, w: (a.T @ a) [:4] * 0.1 if a.shape[0] >= 4 else a),
        ("flip", lambda a, W, w: a.flip(-1)),
        ("cumsum", lambda a, W, w: a.cumsum(-1) * 0.3),
        ("reshape", lambda a, W, w: a.reshape(-1).reshape(4, N)),
        ("unsqueeze", lambda a, W, w: a.unsqueeze(0).squeeze(0)),
        ("cat_slice", lambda a, W, w: lib.cat([a, a * 2], -1)[:, 1:N + 1]),
        ("stack", lambda a, W, w: lib.stack([a, w.expand(4, N)], 0).sum(0)),
        ("layer_norm", lambda a, W, w: F.layer_norm(a, (N,), w, w)),
        ("var", lambda a, W, w: a * a.var(-1, keepdim=True)),
        ("logsumexp", lambda a, W, w: a - a.logsumexp(-1, keepdim=True)),
        ("norm", lambda a, W, w: a / (a.norm() + 1)),
        ("einsum", lambda a, W, w: lib.einsum("ij,jk->ik", a, W)),
        ("index", lambda a, W, w: a[:, [1, 0, 2, 4, 3]]),
        ("clamp", lambda a, W, w: a.clamp(-1.0, 1.0) + a * 0.1),
        ("pow", lambda a, W, w: (a.abs() + 1) ** 1.5),
        ("narrow", lambda a, W, w: lib.cat([a.narrow(-1, 0, 2), a.narrow(-1, 2, N - 2)], -1)),
    ]


NAMES = [n for n, _ in _ops(rg)]


def _program(seed: int, k: int = 6):
    """Same random chain of ops in both libraries, ending in a scalar."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(NAMES), size=k, replace=True)

    def make(lib):
        ops = _ops(lib)

        def f(a, W, w):
            for i in picks:
                a = ops[i][1](a, W, w)
            return (a * a).sum() * 0.1 + a.mean()
        return f
    return make(rg), make(torch), [NAMES[i] for i in picks]


def _data(seed: int, b: int):
    rng = np.random.default_rng(100 + seed)
    X = rng.standard_normal((b, 4, N))
    W = rng.standard_normal((N, N)) * 0.5
    w = rng.standard_normal(N) * 0.5
    return ([rg.tensor(v) for v in (X, W, w)], [torch.tensor(v) for v in (X, W, w)])


def _close(r, t, what):
    assert tuple(r.shape) == tuple(t.shape), (what, r.shape, t.shape)
    np.testing.assert_allclose(r.detach().numpy(), t.detach().numpy(), rtol=1e-8, atol=1e-10,
                               err_msg=what)


def _nodes(tensors) -> int:
    seen, todo = set(), [t._node for t in tensors]
    while todo:
        n = todo.pop()
        if id(n) not in seen:
            seen.add(id(n))
            todo.extend(n.inputs)
    return len(seen)


def _per_slice_ops() -> int:
    return sum(v for k, v in _batching.STATS.items() if k.startswith("op_per_slice:"))


SEEDS = range(24)


def test_the_random_programs_use_every_op():
    used = {name for seed in SEEDS for name in _program(seed)[2]}
    assert used == set(NAMES), set(NAMES) - used


@pytest.mark.parametrize("seed", SEEDS)
def test_random_programs_match_torch_func(seed):
    f, ft, names = _program(seed)
    (X, W, w), (Xt, Wt, wt) = _data(seed, 6)
    before, fell = _batching.STATS["batched"], _per_slice_ops()
    dims = (0, None, None)
    _close(rf.vmap(f, in_dims=dims)(X, W, w), tf.vmap(ft, in_dims=dims)(Xt, Wt, wt),
           f"values of {names}")
    for argnums in (0, 1, (1, 2)):
        got = rf.vmap(rf.grad(f, argnums=argnums), in_dims=dims)(X, W, w)
        want = tf.vmap(tf.grad(ft, argnums=argnums), in_dims=dims)(Xt, Wt, wt)
        for g, t in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            _close(g, t, f"per-sample gradient {argnums} of {names}")
    assert _batching.STATS["batched"] - before == 4, "vmap fell back to per-slice runs"
    assert _per_slice_ops() == fell, f"an op of {names} was mapped per slice"


@pytest.mark.parametrize("seed", range(4))
def test_graph_is_one_slice_size(seed):
    """The batched graph has as many nodes for a batch of 2 as for 9: each op once."""
    f, _, names = _program(seed)
    counts = []
    for b in (2, 9):
        (X, W, w), _ = _data(seed, b)
        out = rf.vmap(f, in_dims=(0, None, None))(X, W, w)
        grads = rf.vmap(rf.grad(f, argnums=(1, 2)), in_dims=(0, None, None))(X, W, w)
        counts.append((_nodes([out]), _nodes(list(grads))))
    assert counts[0] == counts[1], (names, counts)


def test_per_sample_mlp_graph_does_not_grow_with_the_batch():
    from test_func import Net, _per_sample, _state
    p, buffers = _state()
    model = Net(rg.nn)
    params = {k: rg.tensor(v) for k, v in p.items()}
    br = {k: rg.tensor(v) for k, v in buffers.items()}
    counts = []
    for b in (4, 32):
        rng = np.random.default_rng(b)
        X, Y = rg.tensor(rng.standard_normal((b, 3))), rg.tensor(rng.integers(0, 2, b))
        got = _per_sample(rg, rf, rg.nn.functional, model, params, br, X, Y)
        counts.append(_nodes(list(got.values())))
    assert counts[0] == counts[1] < 80, counts


def test_in_dims_out_dims_and_nesting():
    rng = np.random.default_rng(3)
    X = rg.tensor(rng.standard_normal((3, 4, N)))
    W = rg.tensor(rng.standard_normal((N, N)))
    Xt, Wt = torch.tensor(X.numpy()), torch.tensor(W.numpy())

    def g(lib):
        return lambda a, M: (a @ M).softmax(-1).sum(0)
    _close(rf.vmap(g(rg), in_dims=(1, None), out_dims=1)(X, W),
           tf.vmap(g(torch), in_dims=(1, None), out_dims=1)(Xt, Wt), "in_dims 1, out_dims 1")
    _close(rf.vmap(lambda a: a.softmax(-1).sum(0), in_dims=-1)(X),
           tf.vmap(lambda a: a.softmax(-1).sum(0), in_dims=-1)(Xt), "in_dims -1")
    inner = (lambda lib, v: v.vmap(lambda a, M: (a * M).sum(-1), in_dims=(0, None)))
    _close(rf.vmap(inner(rg, rf), in_dims=(None, 0))(X[0], W),
           tf.vmap(inner(torch, tf), in_dims=(None, 0))(Xt[0], Wt), "nested")
    _close(rf.vmap(rf.vmap(rf.grad(lambda a: a.sin().sum())))(X),
           tf.vmap(tf.vmap(tf.grad(lambda a: a.sin().sum())))(Xt), "nested over grad")
    # jacrev through vmap over the cotangents, and hessian-vector products per sample
    _close(rf.vmap(rf.jacrev(lambda a: (a @ W).tanh()))(X[0]),
           tf.vmap(tf.jacrev(lambda a: (a @ Wt).tanh()))(Xt[0]), "vmap(jacrev)")
    hvp = (lambda v: lambda x: v.grad(lambda y: v.grad(lambda z: (z.sin() * z).sum())(y)
                                      .sum())(x))
    _close(rf.vmap(hvp(rf))(X[0]), tf.vmap(hvp(tf))(Xt[0]), "vmap of a second derivative")


def test_outputs_and_errors():
    X = rg.tensor(np.arange(6.0).reshape(3, 2))
    y = rg.tensor([1.0, 2.0])
    out = rf.vmap(lambda a: (a * 2, y), out_dims=(0, None))(X)
    assert out[1] is y and out[0].numpy().tolist() == (X.numpy() * 2).tolist()
    with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
        rf.vmap(lambda a: a * 2, out_dims=None)(X)
    with pytest.raises(ValueError, match="must only return Tensors"):
        rf.vmap(lambda a: 3)(X)


def test_what_falls_back_per_slice():
    X = rg.tensor(np.array([[1.0, 2.0], [-3.0, -4.0]]))
    per = _batching.STATS["per_slice"]
    # a value read while tracing: data-dependent control flow sees every slice
    got = rf.vmap(lambda a: a * 2 if a.sum().item() > 0 else -a)(X)
    assert got.numpy().tolist() == [[2.0, 4.0], [3.0, 4.0]]
    assert _batching.STATS["per_slice"] - per == 1


def _in_place(a):
    b = a.clone().mul_(3)
    b[0] = 7.0  # an indexed assignment to a batched tensor
    return b.add_(a)


def test_in_place_on_batched_tensors():
    X = np.array([[1.0, 2.0, 5.0], [-3.0, -4.0, 0.5]])
    _close(rf.vmap(_in_place)(rg.tensor(X)), tf.vmap(_in_place)(torch.tensor(X)), "in place")


def test_randomness():
    X = rg.tensor(np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="randomness error mode"):
        rf.vmap(lambda a: a + rg.randn(2))(X)
    before = _batching.STATS["batched"]
    same = rf.vmap(lambda a: a + rg.randn(2), randomness="same")(X).numpy()
    assert (same == same[0]).all() and _batching.STATS["batched"] == before + 1
    different = rf.vmap(lambda a: a + rg.randn(2), randomness="different")(X).numpy()
    assert not (different == different[0]).all()
    dropped = rf.vmap(lambda a: rg.nn.functional.dropout(a + 1, 0.5), randomness="same")(
        rg.tensor(np.zeros((4, 50)))).numpy()
    assert (dropped == dropped[0]).all() and 0 < (dropped == 0).mean() < 1


def _cnn_loss(lib, func):
    F = lib.nn.functional

    def loss(p, x, y):
        h = F.conv2d(x.unsqueeze(0), p["conv.weight"], p["conv.bias"], padding=1)
        h = F.max_pool2d(F.relu(h), 2)
        h = F.avg_pool2d(h, 1).flatten(1)
        return F.cross_entropy(F.linear(h, p["fc.weight"], p["fc.bias"]), y.unsqueeze(0))
    return loss


def test_per_sample_gradients_of_a_conv_net():
    """The groups form of conv2d's rule (a batched weight) and the pooling rules, through
    their gradients, against torch.func."""
    rng = np.random.default_rng(11)
    shapes = {"conv.weight": (3, 2, 3, 3), "conv.bias": (3,), "fc.weight": (4, 12),
              "fc.bias": (4,)}
    p = {k: rng.standard_normal(s) * 0.5 for k, s in shapes.items()}
    X, Y = rng.standard_normal((5, 2, 4, 4)), rng.integers(0, 4, 5)
    fell, counts = _per_slice_ops(), []
    for b in (5, 2):
        got = rf.vmap(rf.grad(_cnn_loss(rg, rf)), in_dims=(None, 0, 0))(
            {k: rg.tensor(v) for k, v in p.items()}, rg.tensor(X[:b]), rg.tensor(Y[:b]))
        counts.append(_nodes(list(got.values())))
        want = tf.vmap(tf.grad(_cnn_loss(torch, tf)), in_dims=(None, 0, 0))(
            {k: torch.tensor(v) for k, v in p.items()}, torch.tensor(X[:b]),
            torch.tensor(Y[:b]))
        for k in p:
            _close(got[k], want[k], f"per-sample d/d {k}, batch {b}")
    assert _per_slice_ops() == fell and counts[0] == counts[1], counts


def _detached_path(lib):
    def f(a, W):
        with lib.no_grad():
            scale = (a @ W).abs().mean()  # a constant to the gradient
        return ((a @ W).tanh() * scale).sum()
    return f


def test_grad_modes_are_replayed_as_traced():
    """no_grad inside the function, and vmap(grad) called under no_grad (the grad
    transform's own enable_grad), as torch.func."""
    rng = np.random.default_rng(4)
    X, W = rng.standard_normal((3, 4, N)), rng.standard_normal((N, N))
    for argnums in (0, 1):
        want = tf.vmap(tf.grad(_detached_path(torch), argnums=argnums), in_dims=(0, None))(
            torch.tensor(X), torch.tensor(W))
        got = rf.vmap(rf.grad(_detached_path(rg), argnums=argnums), in_dims=(0, None))(
            rg.tensor(X), rg.tensor(W))
        _close(got, want, f"no_grad inside, d/d arg {argnums}")
        with rg.no_grad():
            got = rf.vmap(rf.grad(_detached_path(rg), argnums=argnums), in_dims=(0, None))(
                rg.tensor(X), rg.tensor(W))
        _close(got, want, f"called under no_grad, d/d arg {argnums}")


def test_autograd_through_a_vmapped_function():
    rng = np.random.default_rng(5)
    X, W = rng.standard_normal((3, 4, N)), rng.standard_normal((N, N))
    grads = []
    for lib, func in ((rg, rf), (torch, tf)):
        x, w = lib.tensor(X, requires_grad=True), lib.tensor(W, requires_grad=True)
        out = func.vmap(lambda a, M: (a @ M).softmax(-1) * a, in_dims=(0, None))(x, w)
        (out * out).sum().backward()
        grads.append((out, x.grad, w.grad))
    for r, t, what in zip(*grads, ("value", "x.grad", "w.grad")):
        _close(r, t, what)


class _Cube(rg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x + 1.0  # not the true derivative: the custom rule must be used


def test_custom_function_inside_vmap_over_grad():
    X = np.random.default_rng(6).standard_normal((3, 4))
    f = lambda a: _Cube.apply(a).sum()  # noqa: E731
    got = rf.vmap(rf.grad(f))(rg.tensor(X))
    want = [rf.grad(f)(rg.tensor(row)).numpy() for row in X]
    np.testing.assert_allclose(got.numpy(), np.stack(want), rtol=1e-12)
    np.testing.assert_allclose(got.numpy(), 3 * X * X + 1.0, rtol=1e-12)


def test_a_trace_in_one_thread_leaves_other_threads_alone():
    import threading
    X = rg.tensor(np.arange(12.0).reshape(3, 4))
    y = rg.tensor(np.ones(4))
    errors, go = [], threading.Barrier(2)

    def mapping():
        go.wait()
        for _ in range(30):
            got = rf.vmap(lambda a: (a * y).sin().sum())(X).numpy()
            if not np.allclose(got, np.sin(X.numpy()).sum(1)):
                errors.append("vmap")

    def recording():
        go.wait()
        for i in range(30):
            if (y * i).sum().item() != 4.0 * i:
                errors.append("other thread")
    threads = [threading.Thread(target=mapping), threading.Thread(target=recording)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("key", ["i", "i, :", "i, ..."])
def test_batched_indices(key):
    """x[idx] with per-slice indices (x batched or not), and its per-sample gradient."""
    rng = np.random.default_rng(8)
    X, idx = rng.standard_normal((4, 6, 3)), rng.integers(0, 6, (4, 2))
    f = eval(f"lambda x, i: x[{key}].sin() * 2")  # noqa: S307  (the key under test)
    fell = _per_slice_ops()
    for dims in ((0, 0), (None, 0)):
        x = X if dims[0] == 0 else X[0]
        _close(rf.vmap(f, in_dims=dims)(rg.tensor(x), rg.tensor(idx)),
               tf.vmap(f, in_dims=dims)(torch.tensor(x), torch.tensor(idx)), f"x[{key}] {dims}")
    g = lambda x, i: f(x, i).sum()  # noqa: E731
    _close(rf.vmap(rf.grad(g))(rg.tensor(X), rg.tensor(idx)),
           tf.vmap(tf.grad(g))(torch.tensor(X), torch.tensor(idx)), f"d x[{key}]")
    assert _per_slice_ops() == fell


def _text_loss(lib):
    F = lib.nn.functional

    def loss(p, tokens, y):
        h = F.embedding(tokens.unsqueeze(0), p["emb"]).mean(1)
        return F.cross_entropy(F.linear(h, p["fc.weight"], p["fc.bias"]), y.unsqueeze(0))
    return loss


def test_per_sample_gradients_through_an_embedding():
    """embedding's rule with a batched table (the parameters, expanded per sample)."""
    rng = np.random.default_rng(12)
    p = {"emb": rng.standard_normal((10, 4)), "fc.weight": rng.standard_normal((3, 4)),
         "fc.bias": rng.standard_normal(3)}
    tokens, y = rng.integers(0, 10, (5, 6)), rng.integers(0, 3, 5)
    fell = _per_slice_ops()
    got = rf.vmap(rf.grad(_text_loss(rg)), in_dims=(None, 0, 0))(
        {k: rg.tensor(v) for k, v in p.items()}, rg.tensor(tokens), rg.tensor(y))
    want = tf.vmap(tf.grad(_text_loss(torch)), in_dims=(None, 0, 0))(
        {k: torch.tensor(v) for k, v in p.items()}, torch.tensor(tokens), torch.tensor(y))
    for k in p:
        _close(got[k], want[k], f"per-sample d/d {k}")
    assert _per_slice_ops() == fell


def test_backward_inside_vmap_is_refused_as_by_torch_func():
    messages = []
    for lib, func in ((rg, rf), (torch, tf)):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError) as e:
            func.vmap(lambda x: (x * w).sum().backward())(lib.ones(3, 2))  # noqa: B023
        messages.append(str(e.value))
        assert w.grad is None
    assert messages[0] == messages[1]


def test_a_node_built_without_the_tape_sends_vmap_per_slice():
    """A (future) fast path that makes its node itself, not through apply: the replay
    cannot see it, and the slice it reads must not leak into every row."""
    from remotegrad._node import Node
    from remotegrad._tensor_base import new

    def sneaky(a):
        return new(Node("neg", (a._node,), {}, a._node.meta)) * 2
    per = _batching.STATS["per_slice"]
    got = rf.vmap(sneaky)(rg.tensor(np.array([[1.0, 2.0], [3.0, 4.0]])))
    assert got.numpy().tolist() == [[-2.0, -4.0], [-6.0, -8.0]]
    assert _batching.STATS["per_slice"] == per + 1


def test_a_captured_tensor_updated_in_place_is_updated_once_per_slice():
    """The trace stops before an in-place update, so the per-slice runs make every update
    (as vmap did per slice before the rules), none of them twice."""
    counter = rg.zeros(1)
    X = rg.tensor(np.arange(6.0).reshape(3, 2))

    def f(a):
        counter.add_(1.0)
        return a * 2
    out = rf.vmap(f)(X)
    assert out.numpy().tolist() == (X.numpy() * 2).tolist()
    assert counter.numpy().tolist() == [3.0]
