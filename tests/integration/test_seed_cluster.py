"""The seed tutorial, run unchanged through a real cluster, prints what PyTorch prints.

Both runs draw the same random numbers (PyTorch's randn is fed numpy's generator with the
seed remotegrad uses), so every printed value is compared too; only object addresses are
masked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The seed document (shared beside the repository; a copy travels with the tests).
SEED = Path(__file__).resolve().parents[1] / "data" / "seed_tutorial.txt"
OUTPUT_START = re.compile(r"^(tensor\(|<|True$|False$|Iteration )")

TORCH_PRELUDE = """
import numpy as _np, torch as _torch
_rng = _np.random.default_rng(0)
def _randn(*size, requires_grad=False, dtype=None):
    return _torch.tensor(_rng.standard_normal(size).astype('float32'), requires_grad=requires_grad)
_torch.randn = _randn
"""
REMOTEGRAD_PRELUDE = "import remotegrad as _rg\n_rg.manual_seed(0)\n"


def seed_cells() -> list[str]:
    """The code cells of the seed notebook text, in order."""
    lines = SEED.read_text().splitlines()
    cells, i = [], 0
    while i < len(lines):
        if re.match(r"^In \[\d+\]:$", lines[i]):
            code = []
            i += 1
            while i < len(lines) and not (OUTPUT_START.match(lines[i]) and code
                                          and code[-1] == ""):
                if lines[i].startswith("### ") or lines[i].startswith("## "):
                    break
                code.append(lines[i])
                i += 1
            cells.append("\n".join(code).strip() + "\n")
        else:
            i += 1
    return cells


def run_cells(cells: list[str], prelude: str, env: dict) -> list[str]:
    marker = "@@cell@@"
    script = prelude + "".join(f"print({marker!r})\n{c}" for c in cells)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    masked = re.sub(r"0x[0-9a-fA-F]+", "0xADDR", out.stdout)
    return masked.split(marker + "\n")[1:]


def test_seed_has_nine_cells():
    assert len(seed_cells()) == 9


def test_seed_through_cluster_prints_what_pytorch_prints(cluster):
    pytest.importorskip("torch")
    cells = seed_cells()
    env = dict(os.environ, REMOTEGRAD_ADDR=cluster.address)
    ours = run_cells([c.replace("import torch", "import remotegrad as torch") for c in cells],
                     REMOTEGRAD_PRELUDE, env)
    theirs = run_cells(cells, TORCH_PRELUDE, dict(os.environ))
    assert len(ours) == len(theirs) == len(cells)
    for n, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"cell {n + 1} differs:\n--- remotegrad\n{a}\n--- pytorch\n{b}"
