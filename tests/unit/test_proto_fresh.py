"""The committed generated code is what `make proto` produces from proto/remotegrad.proto."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path):
    pytest.importorskip("grpc_tools")
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.generate(tmp_path)
    for name in gen.GENERATED:
        committed = (ROOT / "proto" / name).read_text()
        fresh = (tmp_path / name).read_text()
        assert committed == fresh, f"proto/{name} is stale: run `make proto` and commit"


def test_generated_imports_are_package_qualified():
    text = (ROOT / "proto" / "remotegrad_pb2_grpc.py").read_text()
    assert "from remotegrad.proto import remotegrad_pb2" in text
    assert sys.modules.get("proto") is None or "remotegrad" in str(sys.modules["proto"])
