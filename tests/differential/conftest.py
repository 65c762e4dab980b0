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
