"""The seed notebook runs unchanged on connect("local") and prints, cell by cell, exactly
what PyTorch prints for the same code and the same random draws (addresses masked)."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import remotegrad as rg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from test_seed_cluster import seed_cells  # noqa: E402

EXAMPLE = ROOT / "examples" / "seed_tutorial.py"
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
NUMBER = re.compile(r"-?\d+\.\d*(?:e[+-]?\d+)?|-?\d+")


def run(cells: list[str], module) -> list[str]:
    """Run the cells in one namespace where `import torch` gives `module`; stdout per cell."""
    namespace: dict = {}
    outputs = []
    for cell in cells:
        buf = io.StringIO()
        code = cell.replace("import torch", "torch = __module__")
        namespace["__module__"] = module
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<seed>", "exec"), namespace)
        outputs.append(ADDRESS.sub("0xADDR", buf.getvalue()))
    return outputs


@pytest.fixture
def same_draws(monkeypatch):
    """torch.randn draws what remotegrad.manual_seed(0) + randn draws."""
    rng = np.random.default_rng(0)

    def randn(*size, requires_grad=False, dtype=None):
        return torch.tensor(rng.standard_normal(size).astype("float32"),
                            requires_grad=requires_grad)
    monkeypatch.setattr(torch, "randn", randn)
    rg.manual_seed(0)


def test_seed_cells_print_what_pytorch_prints(same_draws):
    cells = seed_cells()
    ours = run(cells, rg)
    theirs = run(cells, torch)
    assert len(ours) == len(theirs) == 9
    for n, (a, b) in enumerate(zip(ours, theirs), 1):
        assert a == b, f"cell {n} differs:\n--- remotegrad\n{a}\n--- pytorch\n{b}"


def test_seed_with_fresh_randomness_differs_only_in_numbers():
    """Without shared draws, masking the random numbers leaves identical text in the cells
    whose output does not depend on how many loop iterations ran."""
    cells = seed_cells()
    rg.manual_seed(1234)
    ours, theirs = run(cells, rg), run(cells, torch)
    for n in (1, 2, 3, 4, 5, 8, 9):
        a, b = NUMBER.sub("N", ours[n - 1]), NUMBER.sub("N", theirs[n - 1])
        assert a == b, f"cell {n}"


def test_example_script_is_the_seed_with_one_import_changed():
    text = EXAMPLE.read_text()
    for cell in seed_cells():
        assert cell.replace("import torch", "import remotegrad as torch") in text
    assert "import torch\n" not in text.replace("import remotegrad as torch", "")


def test_example_script_runs(same_draws):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(EXAMPLE.read_text(), str(EXAMPLE), "exec"), {"__name__": "__main__"})
    assert buf.getvalue().endswith("tensor(True)\n")
