"""Client tests run against the engine in this process (`connect("local")`), or against
the cluster at $REMOTEGRAD_TEST_CLUSTER when set; PyTorch is the reference they compare
with."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import remotegrad as rg  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def local_engine():
    import os
    rg.connect(os.environ.get("REMOTEGRAD_TEST_CLUSTER") or "local")
    yield


@pytest.fixture
def pair():
    """Same-valued (remotegrad, torch) tensors from one numpy array."""
    def make(array, requires_grad=False):
        array = np.asarray(array)
        a = rg.tensor(array, requires_grad=requires_grad)
        b = torch.tensor(array, requires_grad=requires_grad)
        return a, b
    return make


@pytest.fixture
def requests(monkeypatch):
    """The graphs the session sends, one per round trip, as they travel."""
    from remotegrad import _request, _session

    session = _session.current()
    sent = []
    real = session.evaluate

    def counting(nodes, keep):
        sent.append(_request.by_identity(nodes)[0])
        return real(nodes, keep)
    monkeypatch.setattr(session, "evaluate", counting)
    return sent
