"""The differential tests' session: remotegrad's embedded engine (`connect("local")`), or
the cluster at $REMOTEGRAD_TEST_CLUSTER when set (as tests/client does); the integration
tier connects to the `cluster` fixture of tests/conftest.py itself."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch")


@pytest.fixture
def embedded():
    import remotegrad as rg
    rg.connect(os.environ.get("REMOTEGRAD_TEST_CLUSTER") or "local")
    yield


def pytest_terminal_summary(terminalreporter):
    """The KNOWN differences (difftest.KNOWN) the programs ran into: counted, not failed."""
    import sys
    difftest = sys.modules.get("difftest")
    if difftest is None:
        return
    if difftest.KNOWN_SEEN or difftest.SKIPPED or difftest.GATED:
        terminalreporter.section("differential tester: known differences and skips")
    if difftest.GATED:
        terminalreporter.write_line("reported remotegrad differences not generated "
                                    "(difftest.GATES; REMOTEGRAD_DIFF_ENABLE=<gate>):")
        terminalreporter.write_line(difftest.gated_summary())
    if difftest.KNOWN_SEEN:
        terminalreporter.write_line("known differences (difftest.KNOWN), counted, not failed:")
        terminalreporter.write_line(difftest.known_summary())
    for what, n in sorted(difftest.SKIPPED.items()):
        terminalreporter.write_line(f"  skipped {n:6d}  {what}")
