"""Programs written the way PyTorch's tutorials and examples are (tests/compat/programs/),
each run three ways: under PyTorch, under remotegrad embedded (`import torch` resolving to
remotegrad, engine in the process) and through a real cluster (gateway, workers, Redis).
Their printed outputs must agree: the text exactly, numbers within their printed precision
(compat_outputs.py).

A program that needs an API remotegrad lacks stays here, xfail (strict) with the missing
API as its reason, so it turns into a failure the day the API lands without the mark going.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compat_outputs import differences

HERE = Path(__file__).resolve().parent
PROGRAMS = sorted(p.stem for p in (HERE / "programs").glob("*.py"))
SHIM = HERE / "as_remotegrad.py"
TIMEOUT = 120

# program -> the API remotegrad lacks that it stops at (or prints differently because of)
MISSING: dict[str, str] = {
    "gradcheck_function": "torch.autograd.gradcheck and torch.autograd.gradgradcheck",
    "loss_options": "pos_weight of nn.BCEWithLogitsLoss and F.binary_cross_entropy_with_logits "
                    "(NotImplementedError); also, CrossEntropyLoss(label_smoothing=...) ends in "
                    "NllLossBackward0 where PyTorch's ends in AddBackward0, and an invalid "
                    "reduction raises RuntimeError where PyTorch raises ValueError",
    "numpy_bridge": "memory shared between a CPU tensor and its .numpy() array, and between "
                    "an array and torch.from_numpy's tensor (remotegrad copies, as "
                    "docs/compatibility.md says)",
    "one_hot_targets": "Tensor.scatter_ (the transforms tutorial's one-hot Lambda)",
    "warmup_and_plateau": "torch.optim.lr_scheduler.LinearLR, SequentialLR, OneCycleLR and "
                          "ReduceLROnPlateau (the program stops at LinearLR)",
}


def _env(**extra: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0", **extra)
    env.pop("REMOTEGRAD_ADDR", None)
    env.update(extra)
    return env


def _run(argv: list[str], env: dict) -> str:
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env,
                         timeout=TIMEOUT, cwd=HERE / "programs")
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def pytorch_outputs(tmp_path_factory) -> dict[str, tuple[str, str, str]]:
    """Every program's output under PyTorch (one interpreter, a fork per program: importing
    torch once saves seconds per program); a program that fails there fails its test."""
    pytest.importorskip("torch")
    outdir = tmp_path_factory.mktemp("pytorch")
    programs = [str(HERE / "programs" / f"{name}.py") for name in PROGRAMS]
    subprocess.run([sys.executable, str(HERE / "reference.py"), str(outdir), *programs],
                   env=_env(), timeout=TIMEOUT * 2, check=True)
    return {name: tuple((outdir / f"{name}.{part}").read_text() for part in ("rc", "out", "err"))
            for name in PROGRAMS}


def reference(pytorch_outputs: dict, name: str) -> str:
    rc, out, err = pytorch_outputs[name]
    assert rc == "0", f"{name} fails under PyTorch (exit {rc}):\n{err[-3000:]}"
    return out


def _remotegrad_case(name: str):
    marks = [pytest.mark.xfail(strict=True, reason=f"remotegrad lacks {MISSING[name]}")] \
        if name in MISSING else []
    return pytest.param(name, marks=marks, id=name)


def _assert_same(name: str, ours: str, theirs: str) -> None:
    found = differences(ours, theirs)
    assert not found, f"{name} prints differently from PyTorch:\n" + "\n".join(found[:20]) \
        + f"\n--- remotegrad\n{ours}\n--- pytorch\n{theirs}"


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_under_pytorch(name, pytorch_outputs):
    """The reference itself: the program runs and prints something to compare."""
    assert reference(pytorch_outputs, name).strip()


@pytest.mark.parametrize("name", [_remotegrad_case(n) for n in PROGRAMS])
def test_embedded_prints_what_pytorch_prints(name, pytorch_outputs):
    ours = _run([str(SHIM), f"{name}.py"], _env(REMOTEGRAD_ADDR="local"))
    _assert_same(name, ours, reference(pytorch_outputs, name))


@pytest.mark.integration
@pytest.mark.parametrize("name", [_remotegrad_case(n) for n in PROGRAMS])
def test_cluster_prints_what_pytorch_prints(name, cluster, pytorch_outputs):
    ours = _run([str(SHIM), f"{name}.py"], _env(REMOTEGRAD_ADDR=cluster.address))
    _assert_same(name, ours, reference(pytorch_outputs, name))
