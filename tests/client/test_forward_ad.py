"""torch.autograd.forward_ad against PyTorch: tangents of composed functions (elementwise,
matmul, reductions, softmax, a module), several duals at once, a primal that requires grad
(the tangent differentiable again), what unpack_dual returns, reprs with tangents, levels
and PyTorch's errors; tangents are computed lazily, one round trip when read."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as tfw

import remotegrad as rg
import remotegrad.autograd.forward_ad as rfw

RNG = np.random.default_rng(7)


def _mlp(L, x, w, b):
    return L.nn.functional.softmax(L.tanh(x @ w + b), dim=-1).log().sum(0)


FUNCTIONS = {
    "elementwise": (lambda L, a, b: (a * b).exp() + a.tanh() / (b * b + 1), [(3,), (3,)]),
    "broadcast": (lambda L, a, b: (a.sin() * b).sum(-1), [(2, 3), (3,)]),
    "matmul_reduce": (lambda L, a, b: (a @ b).pow(2).mean(), [(2, 3), (3, 4)]),
    "mlp": (lambda L, x, w: _mlp(L, x, w, L.ones(4)), [(5, 3), (3, 4)]),
    "indexing": (lambda L, a, b: a[1:, ::2] * b[0, 1:3] + a.max(), [(3, 4), (2, 4)]),
}


def _tangents(lib, fw, name, arrays, tangents):
    fn, _ = FUNCTIONS[name]
    with fw.dual_level():
        duals = [fw.make_dual(lib.tensor(p), lib.tensor(t)) for p, t in zip(arrays, tangents)]
        out = fn(lib, *duals)
        primal, tangent = fw.unpack_dual(out)
        return primal.detach().numpy().copy(), tangent.detach().numpy().copy()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_tangents_match_pytorch(name):
    shapes = FUNCTIONS[name][1]
    arrays = [RNG.normal(size=s) for s in shapes]
    tangents = [RNG.normal(size=s) for s in shapes]
    mine = _tangents(rg, rfw, name, arrays, tangents)
    ref = _tangents(torch, tfw, name, arrays, tangents)
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m, r, rtol=1e-10, atol=1e-12)


def test_one_dual_among_plain_inputs_matches_jvp():
    a, b, v = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3)
    found = []
    for lib, fw in ((rg, rfw), (torch, tfw)):
        with fw.dual_level():
            d = fw.make_dual(lib.tensor(a), lib.tensor(v))
            found.append(fw.unpack_dual(d * lib.tensor(b) + d.cos()).tangent.numpy().copy())
    np.testing.assert_allclose(found[0], found[1], rtol=1e-12)
    np.testing.assert_allclose(found[0], (b - np.sin(a)) * v, rtol=1e-12)


def test_a_primal_requiring_grad_gives_a_differentiable_tangent():
    found = []
    for lib, fw in ((rg, rfw), (torch, tfw)):
        z = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        with fw.dual_level():
            d = fw.make_dual(z, lib.tensor([1.0, 0.0, 2.0]))
            w = (d * d.sin()).sum()
            tangent = fw.unpack_dual(w).tangent
            (g,) = lib.autograd.grad(tangent, z)
            found.append((d.requires_grad, d.grad_fn.name(), w.grad_fn.name(),
                          tangent.requires_grad, [tangent.item(), *g.tolist()]))
    assert found[0][:4] == found[1][:4] == (True, "ViewBackward0", "SumBackward0", True)
    np.testing.assert_allclose(found[0][4], found[1][4], rtol=1e-6)


def test_unpack_dual_returns_pytorchs_namedtuple_and_identities():
    out = []
    for lib, fw in ((rg, rfw), (torch, tfw)):
        x, t = lib.tensor([1.0, 2.0]), lib.tensor([0.0, 1.0])
        outside = fw.unpack_dual(x)
        with fw.dual_level() as level:
            d = fw.make_dual(x, t)
            u = fw.unpack_dual(d * 2)
            out.append((type(u).__name__, u._fields, level, fw.unpack_dual(d).tangent is t,
                        fw.unpack_dual(x).tangent, outside.tangent, outside.primal is x))
        out[-1] += (fw.unpack_dual(d).tangent,)  # after the level: plain tensors
    assert out[0] == out[1]


def test_reprs_match_pytorch():
    reprs = []
    for lib, fw in ((rg, rfw), (torch, tfw)):
        z = lib.ones(3, requires_grad=True)
        with fw.dual_level():
            x = fw.make_dual(lib.tensor([1.0, 2.0, 3.0]), lib.tensor([1.0, 0.0, 0.0]))
            s = fw.make_dual(lib.tensor(2.0), lib.tensor(1.0))
            dz = fw.make_dual(z, lib.tensor([1.0, 0.0, 0.0]))
            y = x.sin() * 2
            here = [repr(x), repr(y), repr(s), repr(s * s), repr(dz), repr(lib.ones(2) * 3),
                    repr(fw.unpack_dual(y).primal)]
        reprs.append(here + [repr(y), repr(x)])
    assert reprs[0] == reprs[1]


def test_reading_a_tangent_is_one_round_trip(requests):
    with rfw.dual_level():
        a = rfw.make_dual(rg.tensor([0.1, 0.2, 0.3]), rg.tensor([1.0, 1.0, 1.0]))
        b = rfw.make_dual(rg.tensor([1.0, 2.0, 3.0]), rg.tensor([0.5, 0.0, -1.0]))
        primal, tangent = rfw.unpack_dual((a.exp() * b).sum())
        assert requests == []  # nothing computed while recording
        value, derivative = tangent.item(), primal.item()  # the primal came with it
    assert len(requests) == 1
    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(derivative, (np.exp(x) * y).sum())
    np.testing.assert_allclose(value, (np.exp(x) * y + np.exp(x) * [0.5, 0, -1]).sum())


def test_printing_a_dual_result_is_one_round_trip(requests):
    with rfw.dual_level():
        d = rfw.make_dual(rg.tensor([0.5, 1.5]), rg.tensor([1.0, -1.0]))
        text = repr((d * d).exp())
    assert len(requests) == 1
    with tfw.dual_level():
        t = tfw.make_dual(torch.tensor([0.5, 1.5]), torch.tensor([1.0, -1.0]))
        assert text == repr((t * t).exp())


ERRORS = [
    "fw.make_dual(x, t)",
    "enter(); fw.make_dual(x, L.ones(2))",
    "enter(); fw.make_dual(L.tensor([1, 2]), L.ones(2))",
    "enter(); fw.make_dual(x, L.tensor([1, 2, 3]))",
    "enter(); fw.make_dual(fw.make_dual(x, t), t)",
    "enter(); fw.make_dual(fw.make_dual(x, t) * 2, t)",
    "enter(); fw.make_dual(x, t, level=3)",
    "enter(); fw.unpack_dual(fw.make_dual(x, t), level=3)",
    "enter(); assert fw.unpack_dual(x, level=3).tangent is None; fw.make_dual(x, x, level=1)",
    "enter(); fw.enter_dual_level()",
    "fw.exit_dual_level()",
    "enter(); fw.exit_dual_level(level=5)",
]


@pytest.mark.parametrize("code", ERRORS)
def test_errors_match_pytorch(code):
    def run(lib, fw):
        env = {"fw": fw, "L": lib, "x": lib.tensor([1.0, 2.0, 3.0]),
               "t": lib.tensor([1.0, 0.0, 0.0]), "enter": fw.enter_dual_level}
        try:
            exec(code, env)
        finally:
            while True:
                try:
                    fw.exit_dual_level()
                except RuntimeError:
                    break
    with pytest.raises(Exception) as ref:
        run(torch, tfw)
    with pytest.raises(type(ref.value)) as mine:
        run(rg, rfw)
    assert str(mine.value) == str(ref.value)


def test_dual_level_is_a_decorator_too():
    @rfw.dual_level()
    def cube_tangent():
        q = rfw.make_dual(rg.tensor([1.0, 2.0]), rg.tensor([1.0, 1.0]))
        return rfw.unpack_dual(q ** 3).tangent
    assert cube_tangent().tolist() == [3.0, 12.0]
    assert rfw.unpack_dual(rg.ones(1)).tangent is None  # the level closed


def _linear(lib):
    model = lib.nn.Linear(5, 4).double()
    with lib.no_grad():
        model.weight.copy_(lib.tensor(np.linspace(-1, 1, 20).reshape(4, 5)))
        model.bias.copy_(lib.tensor([0.1, -0.2, 0.3, 0.0], dtype=lib.float64))
    return model


@pytest.mark.parametrize("how", ["setattr", "functional_call"])
def test_module_parameters_as_duals_match_pytorch(how):
    """The forward-AD tutorial's two ways: duals set on the module, or functional_call."""
    inp = np.cos(np.arange(15.0)).reshape(3, 5)
    found = []
    for lib, fw in ((rg, rfw), (torch, tfw)):
        model = _linear(lib)
        params = dict(model.named_parameters())
        with fw.dual_level():
            duals = {n: fw.make_dual(p, lib.ones_like(p) * 0.5) for n, p in params.items()}
            if how == "setattr":
                for n, d in duals.items():
                    delattr(model, n)
                    setattr(model, n, d)
                out = model(lib.tensor(inp))
            else:
                out = lib.func.functional_call(model, duals, lib.tensor(inp))
            found.append((fw.unpack_dual(lib.relu(out).sum()).tangent.item(),
                          fw.unpack_dual(out).tangent.detach().numpy().copy()))
    assert found[0][0] == pytest.approx(found[1][0], rel=1e-12)
    np.testing.assert_allclose(found[0][1], found[1][1], rtol=1e-12)


def test_a_custom_function_without_jvp_is_refused_as_in_pytorch():
    messages = []
    for lib, fw in ((rg, rfw), (torch, tfw)):
        class Exp(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.result = x.exp()
                return ctx.result

            @staticmethod
            def backward(ctx, g):
                return g * ctx.result

        with fw.dual_level():
            d = fw.make_dual(lib.tensor([1.0, 2.0]), lib.tensor([1.0, 1.0]))
            with pytest.raises(NotImplementedError) as e:
                fw.unpack_dual(Exp.apply(d) * 2).tangent.tolist()
            messages.append(str(e.value))
            plain = Exp.apply(lib.tensor([0.0])) * d  # no dual flows into it: fine
            assert fw.unpack_dual(plain).tangent.tolist() == [1.0, 1.0]
    assert messages[0] == messages[1]
