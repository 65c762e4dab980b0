"""Autograd semantics against PyTorch: backward, grad, hooks, grad modes, the errors, and
autograd.functional (vectorized: one round trip)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.autograd.functional as TF

import remotegrad as rg
import remotegrad.autograd.functional as RF
from remotegrad import _request, _session
from torchref import close

R = np.random.default_rng(11)
A = R.standard_normal((3, 4)).astype("float32")
W = R.standard_normal((4, 2)).astype("float32")


def both(array, requires_grad=True):
    return (rg.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def same_error(ours, theirs, exc=RuntimeError):
    with pytest.raises(exc) as t:
        theirs()
    with pytest.raises(exc) as o:
        ours()
    assert str(o.value) == str(t.value)


@pytest.fixture
def round_trips(monkeypatch):
    """Counts the requests the client sends."""
    session = _session.current()
    calls = []
    real = session.evaluate

    def counting(nodes, keep):  # each round trip's graph, as it travels
        calls.append(_request.by_identity(nodes)[0])
        return real(nodes, keep)
    monkeypatch.setattr(session, "evaluate", counting)
    return calls


def test_backward_accumulates_and_retain_graph():
    xo, xt = both(A)
    for x in (xo, xt):
        y = (x ** 3).sum()
        y.backward(retain_graph=True)
        y.backward()
    close(xo.grad, xt.grad)


def test_second_backward_errors_only_when_saved_tensors_are_needed():
    xo, xt = both(A)
    yo, yt = (xo * xo).sum(), (xt * xt).sum()
    yo.backward(), yt.backward()
    same_error(yo.backward, yt.backward)
    zo, zt = (xo + 1).sum(), (xt + 1).sum()  # add and sum save no tensors
    zo.backward(), zt.backward()
    zo.backward(), zt.backward()
    close(xo.grad, xt.grad)


def test_error_messages():
    xo, xt = both(A)
    same_error(lambda: (xo * 2).backward(), lambda: (xt * 2).backward())
    same_error(lambda: rg.ones(3).backward(), lambda: torch.ones(3).backward())
    same_error(lambda: (xo * 2).backward(rg.ones(2)), lambda: (xt * 2).backward(torch.ones(2)))
    same_error(lambda: rg.autograd.grad(xo.sum(), rg.ones(2)),
               lambda: torch.autograd.grad(xt.sum(), torch.ones(2)))
    other_o, other_t = both(W)
    same_error(lambda: rg.autograd.grad(xo.sum(), [xo, other_o]),
               lambda: torch.autograd.grad(xt.sum(), [xt, other_t]))
    same_error(lambda: (xo * 2).requires_grad_(False), lambda: (xt * 2).requires_grad_(False))
    same_error(lambda: xo.mul_(2), lambda: xt.mul_(2))


def test_vjp_with_gradient_argument():
    xo, xt = both(A)
    v = R.standard_normal((3, 4)).astype("float32")
    (xo.exp() * 3).backward(rg.tensor(v))
    (xt.exp() * 3).backward(torch.tensor(v))
    close(xo.grad, xt.grad)


def test_backward_inputs_only_fills_those():
    (xo, xt), (wo, wt) = both(A), both(W)
    (xo @ wo).sum().backward(inputs=[wo])
    (xt @ wt).sum().backward(inputs=[wt])
    assert xo.grad is None and xt.grad is None
    close(wo.grad, wt.grad)


def test_create_graph_gives_second_derivatives():
    xo, xt = both(A)
    for x in (xo, xt):
        (g,) = (rg if x is xo else torch).autograd.grad((x ** 3).sum(), x, create_graph=True)
        assert g.requires_grad
        g.sum().backward()
    close(xo.grad, xt.grad)
    xo2, xt2 = both(A)
    for x in (xo2, xt2):
        y = (x.sin() * x).sum()
        y.backward(create_graph=True)
        first = x.grad
        x.grad = None
        first.sum().backward()
    close(xo2.grad, xt2.grad)


def test_grad_allow_unused_and_materialize():
    (xo, xt), (wo, wt) = both(A), both(W)
    ours = rg.autograd.grad((xo * 2).sum(), [xo, wo], allow_unused=True)
    theirs = torch.autograd.grad((xt * 2).sum(), [xt, wt], allow_unused=True)
    close(ours[0], theirs[0])
    assert ours[1] is None and theirs[1] is None
    ours = rg.autograd.grad((xo * 2).sum(), [xo, wo], materialize_grads=True)
    theirs = torch.autograd.grad((xt * 2).sum(), [xt, wt], materialize_grads=True)
    close(ours[1], theirs[1])


def test_grad_wrt_non_leaf_and_multiple_outputs():
    xo, xt = both(A)
    ho, ht = xo.tanh(), xt.tanh()
    outs_o, outs_t = [(ho * 3).sum(), ho.exp().mean()], [(ht * 3).sum(), ht.exp().mean()]
    go = rg.autograd.grad(outs_o, [ho, xo])
    gt = torch.autograd.grad(outs_t, [ht, xt])
    for a, b in zip(go, gt):
        close(a, b)


def test_hooks_and_retain_grad():
    xo, xt = both(A)
    seen = []
    for x in (xo, xt):
        h = x * 2
        h.retain_grad()
        h.register_hook(lambda g: g * 10)
        handle = x.register_hook(lambda g: g + 1)
        y = (h ** 2).sum()
        y.backward()
        seen.append((h.grad, x.grad))
        handle.remove()
    close(seen[0][0], seen[1][0], what="retained non-leaf grad (after hook)")
    close(seen[0][1], seen[1][1], what="leaf grad through both hooks")
    assert xo._hooks == []


def test_hook_errors_and_nonleaf_grad_warning():
    same_error(lambda: rg.ones(2).register_hook(print), lambda: torch.ones(2).register_hook(print))
    same_error(lambda: rg.ones(2).retain_grad(), lambda: torch.ones(2).retain_grad())
    xo, xt = both(A)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (xo * 2).grad is None
        assert (xt * 2).grad is None
    assert len(caught) == 2
    assert str(caught[1].message).startswith(str(caught[0].message)[:200])


def test_grad_setter_checks():
    xo, xt = both(A)
    same_error(lambda: setattr(xo, "grad", rg.ones(2)), lambda: setattr(xt, "grad", torch.ones(2)))
    same_error(lambda: setattr(xo, "grad", rg.ones(3, 4, dtype=rg.float64)),
               lambda: setattr(xt, "grad", torch.ones(3, 4, dtype=torch.float64)))
    xo.grad = rg.ones(3, 4)
    xo.grad = None
    assert xo.grad is None


def test_grad_modes():
    xo, xt = both(A)
    for lib, x in ((rg, xo), (torch, xt)):
        with lib.no_grad():
            assert not (x * 2).requires_grad and not lib.is_grad_enabled()
            with lib.enable_grad():
                assert (x * 2).requires_grad
        with lib.set_grad_enabled(False):
            assert not (x * 2).requires_grad
        assert lib.is_grad_enabled()
        with lib.inference_mode():
            assert not (x * 2).requires_grad and lib.is_inference_mode_enabled()
        assert not lib.is_inference_mode_enabled()

        @lib.no_grad()
        def f(t):
            return (t * 2).requires_grad

        @lib.no_grad
        def g(t):
            return (t * 2).requires_grad

        @lib.set_grad_enabled(False)
        def h(t):
            return (t * 2).requires_grad
        assert lib.is_grad_enabled()
        assert f(x) is False and g(x) is False and h(x) is False and lib.is_grad_enabled()
        lib.set_grad_enabled(False)
        assert not lib.is_grad_enabled()
        lib.set_grad_enabled(True)


def test_detach_and_detach_():
    xo, xt = both(A)
    yo, yt = xo * 2, xt * 2
    assert not yo.detach().requires_grad and yo.requires_grad
    yo.detach_(), yt.detach_()
    assert yo.is_leaf == yt.is_leaf and yo.requires_grad == yt.requires_grad
    close(yo, yt)


def test_one_round_trip_for_all_grads_of_a_backward(round_trips):
    xo, _ = both(A)
    wo, _ = both(W)
    bo = rg.zeros(2, requires_grad=True)
    ((xo @ wo + bo).tanh() ** 2).sum().backward()
    assert len(round_trips) == 0  # nothing fetched yet
    print(xo.grad, wo.grad, bo.grad)
    assert len(round_trips) == 1
    print(xo.grad)
    assert len(round_trips) == 1  # a value already fetched is not fetched again


# --- autograd.functional ---------------------------------------------------------------------
def _f(lib):
    return lambda x, w: ((x @ w).tanh() ** 2).sum(1)


def _scalar(lib):
    return lambda x: (x.sin() * x.exp()).sum() + (x ** 3).sum()


def test_functional_vjp_jvp():
    x, w = A, W
    v_out = R.standard_normal((3,)).astype("float32")
    out_o, vjp_o = RF.vjp(_f(rg), (rg.tensor(x), rg.tensor(w)), rg.tensor(v_out))
    out_t, vjp_t = TF.vjp(_f(torch), (torch.tensor(x), torch.tensor(w)), torch.tensor(v_out))
    close(out_o, out_t)
    for a, b in zip(vjp_o, vjp_t):
        close(a, b)
    vs = (R.standard_normal((3, 4)).astype("float32"), R.standard_normal((4, 2)).astype("float32"))
    out_o, jvp_o = RF.jvp(_f(rg), (rg.tensor(x), rg.tensor(w)), tuple(map(rg.tensor, vs)))
    out_t, jvp_t = TF.jvp(_f(torch), (torch.tensor(x), torch.tensor(w)),
                          tuple(map(torch.tensor, vs)))
    close(jvp_o, jvp_t, rtol=1e-4)


def test_functional_jacobian_is_one_round_trip(round_trips):
    jo = RF.jacobian(_f(rg), (rg.tensor(A), rg.tensor(W)))
    jt = TF.jacobian(_f(torch), (torch.tensor(A), torch.tensor(W)))
    assert len(round_trips) == 0
    close(jo[0], jt[0], rtol=1e-4)
    assert len(round_trips) == 1
    close(jo[1], jt[1], rtol=1e-4)
    assert len(round_trips) == 1
    single_o = RF.jacobian(lambda x: x.exp(), rg.tensor(A[0]))
    single_t = TF.jacobian(lambda x: x.exp(), torch.tensor(A[0]))
    close(single_o, single_t)


def test_functional_hessian_hvp_vhp():
    x = A[0].astype("float64")
    v = R.standard_normal(4)
    ho, ht = RF.hessian(_scalar(rg), rg.tensor(x)), TF.hessian(_scalar(torch), torch.tensor(x))
    close(ho, ht, rtol=1e-6)
    for name in ("hvp", "vhp"):
        out_o, ro = getattr(RF, name)(_scalar(rg), rg.tensor(x), rg.tensor(v))
        out_t, rt = getattr(TF, name)(_scalar(torch), torch.tensor(x), torch.tensor(v))
        close(out_o, out_t)
        close(ro, rt, rtol=1e-6)


def test_functional_errors():
    with pytest.raises(RuntimeError, match="should contain a single element"):
        RF.hessian(lambda x: x * 2, rg.ones(3))
    with pytest.raises(RuntimeError, match="v can only be None"):
        RF.vjp(lambda x: x * 2, rg.ones(3))


def test_is_grads_batched():
    xo, xt = both(A[0])
    (go,) = rg.autograd.grad(xo ** 2, xo, rg.eye(4), is_grads_batched=True)
    (gt,) = torch.autograd.grad(xt ** 2, xt, torch.eye(4), is_grads_batched=True)
    close(go, gt)


def test_autograd_backward_function():
    (xo, xt) = both(A)
    rg.autograd.backward([(xo * 2).sum(), (xo ** 2).sum()])
    torch.autograd.backward([(xt * 2).sum(), (xt ** 2).sum()])
    close(xo.grad, xt.grad)


def test_values_made_under_no_grad_carry_no_gradient():
    xo, xt = both(A)
    for lib, x in ((rg, xo), (torch, xt)):
        with lib.no_grad():
            y = x * 2
        z = x.detach() * 3
        (y * x + z * x).sum().backward()
    close(xo.grad, xt.grad)


def _custom_functions(lib):
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return x ** 3 * scale

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2 * ctx.scale, None

    class ClipGrad(lib.autograd.Function):  # identity forward, clipped gradient backward
        @staticmethod
        def forward(x):
            return x.clone()

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, g):
            return g.clamp(-0.5, 0.5)
    return Cube, ClipGrad


def test_custom_autograd_function():
    (xo, xt) = both(A)
    for lib, x in ((rg, xo), (torch, xt)):
        cube, clip = _custom_functions(lib)
        h = x * 2
        y = cube.apply(h, 0.5)
        z = clip.apply(y * 3)
        assert type(y.grad_fn).__name__ == "CubeBackward"
        (z.sum() + (y * x).sum()).backward()
    close(xo.grad, xt.grad, rtol=1e-4)


def _modify_cases(lib, x):
    def saved_input_then_changed():
        a = x * 2
        b = a * a
        a.add_(1)
        return b.sum()

    def plain_tensor_changed():
        w = lib.ones(3, 4)
        c = x * w
        w.add_(1)
        return c.sum()

    def saved_result_changed():
        e = x.exp()
        f = e * 1
        e.mul_(2)
        return f.sum()

    def unsaved_change_is_fine():
        h = x * 2
        h2 = h + 1
        h.add_(1)
        return h2.sum()

    def change_through_data_is_invisible():
        a = x * 2
        b = a * a
        a.data.add_(1)
        return b.sum()

    def change_through_detach_is_seen():
        a = x * 2
        b = a * a
        a.detach().add_(1)
        return b.sum()
    return [saved_input_then_changed, plain_tensor_changed, saved_result_changed,
            unsaved_change_is_fine, change_through_data_is_invisible,
            change_through_detach_is_seen]


def test_inplace_change_of_saved_tensor_errors_as_pytorch():
    xo, xt = both(A)
    for ours, theirs in zip(_modify_cases(rg, xo), _modify_cases(torch, xt)):
        try:
            theirs().backward()
        except RuntimeError as e:
            with pytest.raises(RuntimeError) as o:
                ours().backward()
            assert str(o.value) == str(e)
        else:
            ours().backward()
    assert xo._version == xt._version == 0
