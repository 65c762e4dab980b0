"""Client tests run against the engine in this process (`connect("local")`); PyTorch is
the reference they compare with."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import remotegrad as rg  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def local_engine():
    rg.connect("local")
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


def close(ours, theirs, rtol=1e-5, atol=1e-6, what="value"):
    """Assert a remotegrad tensor matches a torch tensor: dtype, shape and values."""
    assert ours is not None and theirs is not None, f"{what}: {ours!r} vs {theirs!r}"
    assert str(ours.dtype) == str(theirs.dtype), f"{what}: dtype {ours.dtype} vs {theirs.dtype}"
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {ours.shape} vs {theirs.shape}"
    np.testing.assert_allclose(np.asarray(ours.detach().numpy(), dtype=np.float64),
                               theirs.detach().numpy().astype(np.float64), rtol=rtol,
                               atol=atol, err_msg=what)
