"""torch.save(model) / torch.load of whole modules, as PyTorch 2.6+: the default
(weights_only) load refuses the module's classes with PyTorch's message, weights_only=False
or an allowlist loads it back; state_dict checkpoints stay free of pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(7)


class RgLM(rg.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = rg.nn.Embedding(7, 4)
        self.body = rg.nn.Sequential(rg.nn.Linear(4, 4), rg.nn.Tanh(), rg.nn.LayerNorm(4))
        self.head = rg.nn.Linear(4, 7, bias=False)
        self.head.weight = self.embed.weight      # tied weights
        self.register_buffer("scale", rg.tensor([0.5, 2.0, 1.0, 1.0]))
        self.name = "tiny"

    def forward(self, ids):
        return self.head(self.body(self.embed(ids) * self.scale))


class TorchLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(7, 4)
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(),
                                        torch.nn.LayerNorm(4))
        self.head = torch.nn.Linear(4, 7, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("scale", torch.tensor([0.5, 2.0, 1.0, 1.0]))
        self.name = "tiny"

    def forward(self, ids):
        return self.head(self.body(self.embed(ids) * self.scale))


def _pair():
    theirs = TorchLM()
    ours = RgLM()
    ours.load_state_dict({k: rg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def _refusal(lib, path):
    with pytest.raises(pickle.UnpicklingError) as info:
        lib.load(path)
    return str(info.value)


def test_default_load_refuses_a_whole_module_as_pytorch(tmp_path):
    ours, theirs = _pair()
    rg.save(ours, tmp_path / "ours.pt")
    torch.save(theirs, tmp_path / "theirs.pt")
    mine, pytorch = _refusal(rg, tmp_path / "ours.pt"), _refusal(torch, tmp_path / "theirs.pt")
    for text in (mine, pytorch):
        assert text.startswith("Weights only load failed. This file can still be loaded")
        assert "Unsupported global: GLOBAL test_whole_module_save." in text
    assert "`weights_only` set to `False`" in mine
    assert f"add_safe_globals([{RgLM.__module__}.RgLM])" in mine


def test_weights_only_false_gives_the_module_back(tmp_path):
    ours, theirs = _pair()
    ours.eval()
    rg.save(ours, tmp_path / "m.pt")
    back = rg.load(tmp_path / "m.pt", weights_only=False)
    assert type(back) is RgLM and back.name == "tiny" and not back.training
    assert repr(back) == repr(ours)
    assert back.head.weight is back.embed.weight           # still one tensor
    assert isinstance(back.head.weight, rg.nn.Parameter) and back.head.weight.requires_grad
    assert not back.scale.requires_grad
    assert list(back.state_dict()) == list(theirs.state_dict())
    ids = R.integers(0, 7, (3, 5))
    close(back(rg.tensor(ids)), theirs(torch.tensor(ids)), rtol=1e-5, atol=1e-6)
    # and it trains: one step moves the tied weight once, as PyTorch's
    for model, lib in ((back, rg), (theirs, torch)):
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        lib.nn.functional.cross_entropy(model(lib.tensor(ids)).reshape(-1, 7),
                                        lib.tensor(ids).reshape(-1)).backward()
        opt.step()
    close(back.embed.weight.detach(), theirs.embed.weight.detach(), rtol=1e-4, atol=1e-6)


def test_an_allowlist_loads_it_with_weights_only(tmp_path):
    ours, _ = _pair()
    rg.save({"model": ours, "epoch": 4}, tmp_path / "m.pt")
    classes = [RgLM, rg.nn.Embedding, rg.nn.Sequential, rg.nn.Linear, rg.nn.Tanh,
               rg.nn.LayerNorm]
    with rg.serialization.safe_globals(classes):
        back = rg.load(tmp_path / "m.pt")
    assert back["epoch"] == 4 and type(back["model"]) is RgLM
    assert rg.serialization.get_safe_globals() == []
    rg.serialization.add_safe_globals(classes[:-1])
    try:
        with pytest.raises(pickle.UnpicklingError, match="GLOBAL remotegrad.nn._layers.LayerNorm"):
            rg.load(tmp_path / "m.pt", weights_only=True)
    finally:
        rg.serialization.clear_safe_globals()


def test_state_dict_checkpoints_are_weights_only(tmp_path):
    # PyTorch's own format (tests/client/test_checkpoint_interop.py): a state_dict names no
    # global that PyTorch's weights-only unpickler refuses, in PyTorch as here
    ours, _ = _pair()
    opt = rg.optim.NAdam(ours.parameters())
    rg.save({"model": ours.state_dict(), "optim": opt.state_dict()}, tmp_path / "c.pt")
    back = rg.load(tmp_path / "c.pt")  # weights_only by default, no allowlist needed
    assert list(back["model"]) == list(ours.state_dict())
    assert list(torch.load(tmp_path / "c.pt", weights_only=True)["model"]) == list(back["model"])


def test_a_tensor_alone_and_unpicklable_objects(tmp_path):
    t = rg.tensor([[1.5, -2.0]], requires_grad=True)
    rg.save(t, tmp_path / "t.pt")
    back = rg.load(tmp_path / "t.pt")
    assert rg.equal(back.detach(), t.detach()) and back.requires_grad
    errors = []
    for lib in (rg, torch):  # pickle's own error, whatever it is, as torch.save's
        with pytest.raises(Exception, match="Can't pickle") as info:
            lib.save({"f": lambda: 0}, tmp_path / "bad.pt")
        errors.append(type(info.value))
    assert errors[0] is errors[1]
