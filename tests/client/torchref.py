"""Comparison helpers for the client tests: PyTorch is the reference."""

from __future__ import annotations

import numpy as np


def close(ours, theirs, rtol=1e-5, atol=1e-6, what="value"):
    """Assert a remotegrad tensor matches a torch tensor: dtype, shape and values."""
    assert ours is not None and theirs is not None, f"{what}: {ours!r} vs {theirs!r}"
    assert str(ours.dtype) == str(theirs.dtype), f"{what}: dtype {ours.dtype} vs {theirs.dtype}"
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {ours.shape} vs {theirs.shape}"
    np.testing.assert_allclose(np.asarray(ours.detach().numpy(), dtype=np.float64),
                               theirs.detach().numpy().astype(np.float64), rtol=rtol,
                               atol=atol, err_msg=what)


def same_runs(ours, theirs, rtol, atol):
    """Two runs of one program, each a list of (key, value) pairs, agree: the same keys in
    order, tensors close (see close), anything else equal."""
    assert [k for k, _ in ours] == [k for k, _ in theirs], (ours, theirs)
    for (key, a), (_, b) in zip(ours, theirs):
        if hasattr(a, "shape") and hasattr(b, "shape"):
            close(a, b, rtol=rtol, atol=atol, what=key)
        else:
            assert a == b, f"{key}: {a!r} vs PyTorch {b!r}"


def raises_as_torch(run, torch_lib, ours_lib):
    """`run(lib)` raises the same exception class with the same message under remotegrad
    as under PyTorch (its class is at least PyTorch's)."""
    import pytest

    with pytest.raises(Exception) as ref:
        run(torch_lib)
    with pytest.raises(type(ref.value)) as mine:
        run(ours_lib)
    assert str(mine.value) == str(ref.value)
