"""remotegrad.nn and remotegrad.optim against torch.nn and torch.optim: module API,
reprs, forward values and gradients with the same weights, optimisers step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(5)


def to_rg(state: dict) -> dict:
    return {k: rg.tensor(v.detach().numpy()) for k, v in state.items()}


def mlp(lib, dropout=0.0):
    nn = lib.nn
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 8),
                         nn.Tanh(), nn.LayerNorm(8), nn.Linear(8, 3))


def twins(dropout=0.0):
    torch.manual_seed(0)
    theirs = mlp(torch, dropout)
    ours = mlp(rg, dropout)
    ours.load_state_dict(to_rg(theirs.state_dict()))
    return ours, theirs


def test_module_api_matches():
    ours, theirs = twins(0.1)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape)
                                                            for p in theirs.parameters()]
    assert all(p.requires_grad and p.is_leaf for p in ours.parameters())
    assert not any(v.requires_grad for v in ours.state_dict().values())
    assert ours.training and not ours.eval().training and not ours[2].training
    assert ours.train().training and len(ours) == len(theirs)
    assert repr(rg.nn.Embedding(10, 3, padding_idx=1)) == repr(torch.nn.Embedding(10, 3,
                                                                                 padding_idx=1))
    assert repr(rg.nn.Linear(2, 2, bias=False)) == repr(torch.nn.Linear(2, 2, bias=False))
    assert repr(rg.nn.Conv2d(3, 8, 3, padding=1)) == repr(torch.nn.Conv2d(3, 8, 3, padding=1))
    assert repr(rg.nn.Parameter(rg.ones(2))) == repr(torch.nn.Parameter(torch.ones(2)))


def test_load_state_dict_errors_match():
    ours, theirs = rg.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    for bad in ({"weight": np.ones((2, 2), "float32")},
                {"weight": np.ones((3, 2), "float32"), "bias": np.ones(2, "float32")}):
        with pytest.raises(RuntimeError) as t:
            theirs.load_state_dict({k: torch.tensor(v) for k, v in bad.items()})
        with pytest.raises(RuntimeError) as o:
            ours.load_state_dict({k: rg.tensor(v) for k, v in bad.items()})
        assert str(o.value) == str(t.value)
    assert repr(ours.load_state_dict(ours.state_dict())) == "<All keys matched successfully>"


def test_forward_and_gradients_match_with_same_weights():
    ours, theirs = twins()
    x = R.standard_normal((5, 6)).astype("float32")
    y = np.array([0, 2, 1, 1, 0])
    lo = rg.nn.functional.cross_entropy(ours(rg.tensor(x)), rg.tensor(y))
    lt = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    close(lo, lt)
    lo.backward(), lt.backward()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        close(a.grad, b.grad, rtol=1e-4, atol=1e-6, what=name)
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_embedding_and_losses():
    emb_t = torch.nn.Embedding(7, 4)
    emb_o = rg.nn.Embedding(7, 4)
    emb_o.load_state_dict(to_rg(emb_t.state_dict()))
    idx = np.array([[1, 3], [6, 1]])
    close(emb_o(rg.tensor(idx)), emb_t(torch.tensor(idx)))
    a = R.random((4, 3)).astype("float32")
    b = R.random((4, 3)).astype("float32")
    for name in ("mse_loss", "l1_loss", "binary_cross_entropy"):
        close(getattr(rg.nn.functional, name)(rg.tensor(a), rg.tensor(b)),
              getattr(torch.nn.functional, name)(torch.tensor(a), torch.tensor(b)), what=name)
    close(rg.nn.MSELoss(reduction="sum")(rg.tensor(a), rg.tensor(b)),
          torch.nn.MSELoss(reduction="sum")(torch.tensor(a), torch.tensor(b)))
    t = np.array([1, 0, 2, 2])
    close(rg.nn.functional.one_hot(rg.tensor(t), 4), torch.nn.functional.one_hot(torch.tensor(t),
                                                                                 4))


def test_dropout_mask_is_drawn_on_the_client():
    x = rg.ones(1000, requires_grad=True)
    out = rg.nn.functional.dropout(x, 0.25)
    values = out.detach().numpy()
    assert set(np.unique(values)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (values == 0).mean() < 0.35
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), values)
    assert rg.nn.functional.dropout(x, 0.5, training=False) is x


@pytest.mark.skipif("conv2d" not in rg.proto.catalog.CATALOG if hasattr(rg, "proto") else True,
                    reason="catalog has no conv2d yet")
def test_conv2d_matches():
    conv_t = torch.nn.Conv2d(2, 3, 3, padding=1, stride=2)
    conv_o = rg.nn.Conv2d(2, 3, 3, padding=1, stride=2)
    conv_o.load_state_dict(to_rg(conv_t.state_dict()))
    x = R.standard_normal((2, 2, 7, 7)).astype("float32")
    close(conv_o(rg.tensor(x)), conv_t(torch.tensor(x)), rtol=1e-4)
    for padding in ("same", "valid"):
        w = R.standard_normal((3, 2, 3, 2)).astype("float32")
        close(rg.nn.functional.conv2d(rg.tensor(x), rg.tensor(w), padding=padding),
              torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=padding),
              rtol=1e-4, atol=1e-5, what=padding)


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=True)),
    ("Adam", dict(lr=0.01)), ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{k}" for n, k in OPTIMIZERS])
def test_optimizer_step_by_step(name, kwargs):
    ours, theirs = twins()
    opt_o = getattr(rg.optim, name)(ours.parameters(), **kwargs)
    opt_t = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    x = R.standard_normal((8, 6)).astype("float32")
    y = R.integers(0, 3, 8)
    for step in range(5):
        for model, opt, lib in ((ours, opt_o, rg), (theirs, opt_t, torch)):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y))
            loss.backward()
            opt.step()
        for (pname, a), b in zip(ours.named_parameters(), theirs.parameters()):
            close(a.detach(), b.detach(), rtol=1e-4, atol=1e-5, what=f"step {step} {pname}")


def test_optimizer_api():
    p = rg.nn.Parameter(rg.ones(2))
    opt = rg.optim.SGD([{"params": [p], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["momentum"] == 0.9
    (p * 3).sum().backward()
    opt.step()
    state = opt.state_dict()
    assert list(state["state"]) == [0] and "momentum_buffer" in state["state"][0]
    opt.load_state_dict(state)
    with pytest.raises(ValueError, match="empty parameter list"):
        rg.optim.Adam([])
    loss = opt.step(lambda: (p * p).sum())
    assert loss.item() > 0


def test_pooling_and_clip_grad_norm():
    x = R.standard_normal((2, 3, 6, 6)).astype("float32")
    for name, kwargs in (("max_pool2d", dict(kernel_size=2)),
                         ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1))):
        xo, xt = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yo = getattr(rg.nn.functional, name)(xo, **kwargs)
        yt = getattr(torch.nn.functional, name)(xt, **kwargs)
        close(yo, yt, what=name)
        assert type(yo.grad_fn).__name__ == type(yt.grad_fn).__name__
        yo.sum().backward(), yt.sum().backward()
        close(xo.grad, xt.grad, what=f"{name} grad")
    assert repr(rg.nn.MaxPool2d(2)) == repr(torch.nn.MaxPool2d(2))
    ours, theirs = twins()
    x = R.standard_normal((5, 6)).astype("float32")
    (ours(rg.tensor(x)) ** 2).sum().backward()
    (theirs(torch.tensor(x)) ** 2).sum().backward()
    total_o = rg.nn.utils.clip_grad_norm_(ours.parameters(), 0.5)
    total_t = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
    close(total_o, total_t, rtol=1e-4)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_composed_ops_match():
    a, b = R.random((3, 4)).astype("float32") + 0.5, R.random((3, 4)).astype("float32") + 0.5
    ao, bo, at, bt = rg.tensor(a), rg.tensor(b), torch.tensor(a), torch.tensor(b)
    close(ao.square(), at.square())
    close(ao.addcmul(bo, bo, value=0.5), at.addcmul(bt, bt, value=0.5))
    close(ao.addcdiv(bo, ao, value=-2), at.addcdiv(bt, at, value=-2))
    close(ao.lerp(bo, 0.3), at.lerp(bt, 0.3))
    ao.lerp_(bo, 0.5), at.lerp_(bt, 0.5)
    close(ao, at)


SCHEDULERS = [("StepLR", dict(step_size=2, gamma=0.5)),
              ("MultiStepLR", dict(milestones=[1, 3])), ("ExponentialLR", dict(gamma=0.9)),
              ("LambdaLR", dict(lr_lambda=lambda e: 1 / (e + 1))),
              ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01))]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_lr_schedulers_match(name, kwargs):
    opt_o = rg.optim.SGD([rg.nn.Parameter(rg.ones(1))], lr=0.1)
    opt_t = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    s_o = getattr(rg.optim.lr_scheduler, name)(opt_o, **kwargs)
    s_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **kwargs)
    for _ in range(11):
        assert s_o.get_last_lr() == pytest.approx(s_t.get_last_lr(), rel=1e-12, abs=1e-15)
        opt_o.step(), opt_t.step()
        s_o.step(), s_t.step()


def test_deepcopy_and_pickle_of_modules():
    import copy
    import pickle
    ours, theirs = twins()
    clone = copy.deepcopy(ours)
    with rg.no_grad():
        clone[0].weight.add_(1)
    assert not rg.allclose(clone[0].weight, ours[0].weight)
    assert isinstance(clone[0].weight, rg.nn.Parameter) and clone[0].weight.requires_grad
    back = pickle.loads(pickle.dumps(ours))
    close(back[0].weight.detach(), theirs[0].weight.detach())
    with pytest.raises(RuntimeError) as o:
        copy.deepcopy(ours[0].weight * 2)
    with pytest.raises(RuntimeError) as t:
        copy.deepcopy(theirs[0].weight * 2)
    assert str(o.value) == str(t.value)


@pytest.mark.parametrize("shape,cls", [((8, 4), "BatchNorm1d"), ((6, 4, 5), "BatchNorm1d"),
                                       ((3, 4, 2, 2), "BatchNorm2d")])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_matches(shape, cls, momentum):
    bn_o, bn_t = getattr(rg.nn, cls)(4, momentum=momentum), getattr(torch.nn, cls)(
        4, momentum=momentum)
    assert repr(bn_o) == repr(bn_t)
    assert list(bn_o.state_dict()) == list(bn_t.state_dict())
    for step in range(3):
        x = R.standard_normal(shape).astype("float32")
        xo, xt = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yo, yt = bn_o(xo), bn_t(xt)
        close(yo, yt, rtol=1e-4, atol=1e-5, what=f"train step {step}")
        assert type(yo.grad_fn).__name__ == type(yt.grad_fn).__name__
        (yo * yo).sum().backward(), (yt * yt).sum().backward()
        close(xo.grad, xt.grad, rtol=1e-3, atol=1e-4, what="input grad")
        close(bn_o.weight.grad, bn_t.weight.grad, rtol=1e-3, atol=1e-4, what="weight grad")
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        close(getattr(bn_o, name), getattr(bn_t, name), rtol=1e-5, what=name)
    bn_o.eval(), bn_t.eval()
    x = R.standard_normal(shape).astype("float32")
    close(bn_o(rg.tensor(x)), bn_t(torch.tensor(x)), rtol=1e-4, atol=1e-5, what="eval")


def test_attention_and_cosine_similarity():
    q, k, v = (R.standard_normal((2, 5, 8)).astype("float32") for _ in range(3))
    mask = R.random((5, 5)) > 0.3
    np.fill_diagonal(mask, True)
    for kwargs in ({}, {"is_causal": True}, {"scale": 0.5}):
        close(rg.nn.functional.scaled_dot_product_attention(*map(rg.tensor, (q, k, v)), **kwargs),
              torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)),
                                                               **kwargs), rtol=1e-4, atol=1e-5)
    close(rg.nn.functional.scaled_dot_product_attention(*map(rg.tensor, (q, k, v)),
                                                        attn_mask=rg.tensor(mask)),
          torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)),
                                                           attn_mask=torch.tensor(mask)),
          rtol=1e-4, atol=1e-5)
    close(rg.nn.functional.cosine_similarity(rg.tensor(q[0]), rg.tensor(k[0])),
          torch.nn.functional.cosine_similarity(torch.tensor(q[0]), torch.tensor(k[0])))


def test_save_and_load_checkpoints(tmp_path):
    ours, _ = twins()
    opt = rg.optim.Adam(ours.parameters(), lr=0.01)
    x = rg.tensor(R.standard_normal((4, 6)).astype("float32"))
    ours(x).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.pt"
    rg.save({"model": ours.state_dict(), "optim": opt.state_dict(), "epoch": 3,
             "note": "ok", "p": rg.nn.Parameter(rg.ones(2))}, path)
    back = rg.load(path, map_location="cpu")
    assert back["epoch"] == 3 and back["note"] == "ok"
    assert isinstance(back["p"], rg.nn.Parameter) and back["p"].requires_grad
    fresh, _ = twins()
    fresh.load_state_dict(back["model"])
    for a, b in zip(fresh.parameters(), ours.parameters()):
        assert rg.equal(a.detach(), b.detach())
    opt2 = rg.optim.Adam(fresh.parameters(), lr=0.01)
    opt2.load_state_dict(back["optim"])
    assert opt2.state_dict()["state"][0]["step"].item() == 1.0
    with pytest.raises(Exception, match="Can't pickle"):  # torch.save's error: pickle's
        rg.save({"f": lambda: 0}, tmp_path / "bad.pt")


RNNS = [("LSTM", dict(num_layers=2, batch_first=True), (3, 5, 4)),
        ("GRU", dict(bidirectional=True), (5, 3, 4)),
        ("RNN", dict(nonlinearity="relu", bias=False), (5, 4)),
        ("LSTM", dict(bidirectional=True, num_layers=2), (5, 4))]


@pytest.mark.parametrize("name,kwargs,shape", RNNS, ids=[r[0] for r in RNNS])
def test_recurrent_layers_match(name, kwargs, shape):
    mod_t = getattr(torch.nn, name)(4, 6, **kwargs)
    mod_o = getattr(rg.nn, name)(4, 6, **kwargs)
    assert repr(mod_o) == repr(mod_t)
    assert list(mod_o.state_dict()) == list(mod_t.state_dict())
    mod_o.load_state_dict(to_rg(mod_t.state_dict()))
    x = R.standard_normal(shape).astype("float32")
    xo, xt = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_o, state_o = mod_o(xo)
    out_t, state_t = mod_t(xt)
    close(out_o, out_t, rtol=1e-4, atol=1e-5, what="output")
    states_o = state_o if isinstance(state_o, tuple) else (state_o,)
    states_t = state_t if isinstance(state_t, tuple) else (state_t,)
    for a, b in zip(states_o, states_t):
        close(a, b, rtol=1e-4, atol=1e-5, what="final state")
    (out_o ** 2).sum().backward(), (out_t ** 2).sum().backward()
    close(xo.grad, xt.grad, rtol=1e-3, atol=1e-5, what="input grad")
    for (n, a), b in zip(mod_o.named_parameters(), mod_t.parameters()):
        close(a.grad, b.grad, rtol=1e-3, atol=1e-5, what=n)


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_matches(batch_first):
    mha_t = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
    mha_o = rg.nn.MultiheadAttention(8, 2, batch_first=batch_first)
    assert repr(mha_o) == repr(mha_t) and list(mha_o.state_dict()) == list(mha_t.state_dict())
    mha_o.load_state_dict(to_rg(mha_t.state_dict()))
    q = R.standard_normal((5, 3, 8)).astype("float32")
    kv = R.standard_normal((4, 3, 8)).astype("float32")
    if batch_first:
        q, kv = q.transpose(1, 0, 2).copy(), kv.transpose(1, 0, 2).copy()
    pad = np.zeros((3, 4), dtype=bool)
    pad[1, 3] = True
    causal = np.triu(np.ones((5, 4), dtype=bool), 1)
    for kwargs in ({}, {"key_padding_mask": pad}, {"attn_mask": causal},
                   {"average_attn_weights": False}):
        ko = {k: rg.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        kt = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        args_o = [rg.tensor(a, requires_grad=True) for a in (q, kv, kv)]
        args_t = [torch.tensor(a, requires_grad=True) for a in (q, kv, kv)]
        out_o, w_o = mha_o(*args_o, **ko)
        out_t, w_t = mha_t(*args_t, **kt)
        close(out_o, out_t, rtol=1e-4, atol=1e-5, what=f"output {kwargs}")
        close(w_o, w_t, rtol=1e-4, atol=1e-5, what=f"weights {kwargs}")
        out_o.sum().backward(), out_t.sum().backward()
        close(args_o[0].grad, args_t[0].grad, rtol=1e-3, atol=1e-5, what="query grad")
        close(mha_o.in_proj_weight.grad, mha_t.in_proj_weight.grad, rtol=1e-3, atol=1e-5)
        mha_o.zero_grad(), mha_t.zero_grad()


def test_forward_hooks_containers_and_submodules():
    for lib in (rg, torch):
        model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU())
        seen = []
        h1 = model[0].register_forward_hook(
            lambda m, a, out, seen=seen: seen.append(tuple(out.shape)))
        h2 = model.register_forward_pre_hook(lambda m, a: (a[0] * 0,))
        out = model(lib.ones(2, 3))
        # the pre-hook zeroes the input: each row is relu(bias) (a float32 sum of 8 values
        # against twice a sum of 4 rounds differently with the random init: approx)
        assert seen == [(2, 4)]
        assert float(out.sum()) == pytest.approx(float(model[1](model[0].bias).sum()) * 2,
                                                 rel=1e-6, abs=1e-6)
        h1.remove(), h2.remove()
        model(lib.ones(2, 3))
        assert len(seen) == 1
        assert model.get_submodule("0") is model[0]
        assert model.get_parameter("0.bias") is model[0].bias
        md = lib.nn.ModuleDict({"a": lib.nn.Linear(2, 2)})
        pl = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2))])
        pd = lib.nn.ParameterDict({"w": lib.nn.Parameter(lib.ones(3))})
        assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]
        assert [n for n, _ in pl.named_parameters()] == ["0"] and len(pl) == 1
        assert [n for n, _ in pd.named_parameters()] == ["w"] and "a" in md
