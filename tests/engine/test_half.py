"""float16: values and first-order gradients of the ops a half-precision model uses,
against PyTorch's float16 (which computes in float32 internally and rounds, so the
tolerance is half precision's)."""

from __future__ import annotations

import pytest

from remotegrad.proto import catalog

from .helpers import Case, assert_close

pytestmark = pytest.mark.usefixtures("backend")  # numpy, and cupy where a GPU is

OPS = ["add", "mul", "div", "exp", "tanh", "sigmoid", "relu", "gelu", "matmul", "linear",
       "sum", "mean", "softmax", "log_softmax", "cross_entropy", "layer_norm", "reshape",
       "transpose", "cat", "where", "pow", "sqrt", "mse_loss"]
HALF = {"rtol": 2e-2, "atol": 2e-2}


@pytest.mark.parametrize("name", OPS)
def test_half_precision(name):
    sample = catalog.get(name).samples[0]
    case = Case(name, sample, "float16", second=False)
    out, first, _ = case.engine()
    t_out, t_first, _ = case.torch()
    assert_close(out, t_out, HALF, f"{name} float16: forward pass")
    for i, g, t in zip(case.wrt, first, t_first):
        assert_close(g, t, HALF, f"{name} float16: backward pass, input {i}")
