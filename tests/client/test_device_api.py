"""Device selection (set/get_default_device, torch.accelerator), torch.onnx and the import
paths programs use (torch.nn.modules, torch.serialization), against a CPU-only PyTorch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import remotegrad as rg


def _outcome(call):
    try:
        return ("ok", repr(call()))
    except Exception as e:  # the class and message are what is compared
        return (type(e).__name__, str(e))


@pytest.fixture(autouse=True)
def _restore_default_device():
    yield
    rg.set_default_device(None)
    torch.set_default_device(None)  # "cpu" would leave PyTorch's device mode on


def test_default_device_is_the_cpu():
    assert repr(rg.get_default_device()) == repr(torch.get_default_device())
    for spec in ("cpu", None, rg.device("cpu")):
        rg.set_default_device(spec)
        assert repr(rg.get_default_device()) == "device(type='cpu')"
        assert str(rg.zeros(2).device) == "cpu"


@pytest.mark.parametrize("spec", ["cuda", "xpu", "mps", "hip", "bogus", "CPU", "", 3])
def test_other_devices_fail_as_on_a_cpu_only_pytorch(spec):
    # PyTorch accepts a known device type and fails when the default is next read (by
    # get_default_device or a factory); remotegrad fails at once, with that error
    def theirs():
        torch.set_default_device(spec)
        return torch.get_default_device()
    assert _outcome(lambda: rg.set_default_device(spec)) == _outcome(theirs)
    assert repr(rg.get_default_device()) == "device(type='cpu')"  # unchanged


def test_meta_default_device_is_refused_by_name():
    with pytest.raises(NotImplementedError, match="meta"):
        rg.set_default_device("meta")


def test_accelerator_answers_as_pytorch_without_one():
    for name in ("is_available", "current_accelerator", "device_count",
                 "current_device_index", "synchronize"):
        assert _outcome(getattr(rg.accelerator, name)) == _outcome(
            getattr(torch.accelerator, name)), name
    assert _outcome(lambda: rg.accelerator.set_device_index(0)) == _outcome(
        lambda: torch.accelerator.set_device_index(0))
    assert rg.accelerator.current_accelerator(check_available=True) is None
    for lib in (rg, torch):  # the deprecated spelling warns first
        with pytest.warns(FutureWarning, match="current_device_index"):
            with pytest.raises(RuntimeError, match="none is available"):
                lib.accelerator.current_device_idx()


def test_the_usual_device_pick_runs_unchanged():
    def pick(lib):
        acc = lib.accelerator
        device = acc.current_accelerator().type if acc.is_available() else "cpu"
        model = lib.nn.Linear(3, 2).to(device)
        return device, str(model(lib.ones(4, 3, device=device)).device)
    assert pick(rg) == pick(torch) == ("cpu", "cpu")


def test_onnx_imports_and_export_says_what_is_unsupported(tmp_path):
    import remotegrad.onnx as onnx
    assert onnx.is_in_onnx_export() is False
    model = rg.nn.Linear(3, 2)
    for call in (lambda: onnx.export(model, (rg.ones(1, 3),), str(tmp_path / "m.onnx")),
                 lambda: rg.onnx.dynamo_export(model, rg.ones(1, 3))):
        with pytest.raises(NotImplementedError, match=r"torch\.onnx\.\w+ \(ONNX export\)"):
            call()
    assert not (tmp_path / "m.onnx").exists()


def test_import_paths_exist():
    from remotegrad.nn.modules import Linear, Module
    from remotegrad.nn.modules.loss import HuberLoss, _Loss
    from remotegrad.nn.modules.module import Module as M2
    from remotegrad.serialization import add_safe_globals, load, save  # noqa: F401
    assert Module is M2 is rg.nn.Module and Linear is rg.nn.Linear
    assert issubclass(HuberLoss, _Loss)
    assert set(rg.nn.modules.__all__) >= {n for n in rg.nn.__all__ if n[0].isupper()} - {
        "Parameter"}
    import importlib
    for sub in (n for n in rg.nn.modules.__all__ if n[0].islower()):  # the same homes
        ours = importlib.import_module(f"remotegrad.nn.modules.{sub}")
        theirs = importlib.import_module(f"torch.nn.modules.{sub}")
        assert all(hasattr(theirs, name) for name in ours.__all__), sub


ALIASED = """
import sys
import remotegrad
sys.modules["torch"] = remotegrad          # how a program for PyTorch runs unchanged
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.onnx
import torch.optim as optim
from torch.nn.modules.loss import _Loss
from torch.serialization import add_safe_globals
from torch.nn.modules import Module
assert nn is remotegrad.nn and F is remotegrad.nn.functional and Module is remotegrad.nn.Module
assert torch.onnx is remotegrad.onnx and optim.NAdam is remotegrad.optim.NAdam
assert sys.modules["torch.nn.modules.loss"] is remotegrad.nn.modules.loss
class MyLoss(_Loss):
    def forward(self, a, b):
        return F.smooth_l1_loss(a, b, reduction=self.reduction)
print(MyLoss()(torch.ones(2), torch.zeros(2)).item())
try:
    import torch.no_such_module
except ModuleNotFoundError as e:
    print(e)
"""


def test_submodules_of_an_aliased_package_are_ours():
    env = {**os.environ, "REMOTEGRAD_ADDR": "local"}
    out = subprocess.run([sys.executable, "-c", ALIASED], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["0.5", "No module named 'torch.no_such_module'"]
