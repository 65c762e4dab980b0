"""The README's configuration table is the one generated from the settings list."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_config_table_is_current():
    spec = importlib.util.spec_from_file_location("config_table",
                                                  ROOT / "scripts" / "config_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    readme = (ROOT / "README.md").read_text()
    assert mod.table() in readme, "README config table is stale: run scripts/config_table.py"


def test_every_setting_has_a_remotegrad_variable():
    from remotegrad.server.config import SETTINGS
    names = [s.env for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(n.startswith("REMOTEGRAD_") for n in names)
