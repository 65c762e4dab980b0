"""DESIGN.md's dependency directions, read off every import statement of the packages
(those inside functions too: a deferred import is still a dependency).

proto depends on nothing of ours; worker on proto; server on proto and on the engine's
planning and computing API (engine, estimate, compute), the CLI also on the worker service
it starts; the SDK on proto, and on the worker only through client/_engine.py (the
embedded mode's one door). Nothing imports the SDK from the servers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK_MODULES = {p.stem for p in (ROOT / "client").iterdir()} | {"remotegrad"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield from (f"{node.module}.{a.name}" for a in node.names)


def _layer(module: str) -> str | None:
    """Which of our packages `module` is in (None: not ours)."""
    parts = module.split(".")
    if parts[0] != "remotegrad":
        return None
    if len(parts) > 1 and parts[1] in ("proto", "worker", "server", "loadtest"):
        return ".".join(parts[:3]) if parts[1] == "worker" else parts[1]
    return "sdk"


ALLOWED = {
    "proto": lambda f, m: m == "proto",
    "worker": lambda f, m: m == "proto" or m.startswith("remotegrad.worker"),
    "server": lambda f, m: m in ("proto", "server", "remotegrad.worker.engine",
                                 "remotegrad.worker.estimate", "remotegrad.worker.compute")
    or (f.name == "cli.py" and m in ("remotegrad.worker.service", "loadtest")),
    "client": lambda f, m: m in ("proto", "sdk")
    or (f.name == "_engine.py" and m.startswith("remotegrad.worker")),
}


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_imports_follow_the_layers(folder):
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module in _imports(path):
            layer = _layer(module)
            if layer is not None and not ALLOWED[folder](path, layer):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from remotegrad.server import metrics\n")
    assert list(_imports(bad)) == ["remotegrad.server.metrics"]
    assert not ALLOWED["worker"](bad, _layer("remotegrad.server.metrics"))
