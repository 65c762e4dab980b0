"""The examples run end to end on connect("local") and reach their goals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_mlp_digits_reaches_95_percent(capsys):
    pytest.importorskip("sklearn")
    assert load("train_mlp_digits").main(["local"]) == 0
    out = capsys.readouterr()
    assert "test accuracy" in out.out and "ms/step" in out.err


def test_hessian_vector_matches_pytorch(capsys):
    assert load("hessian_vector").main(["local"]) == 0
    assert "match" in capsys.readouterr().out
