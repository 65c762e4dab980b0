"""Tensor.to and Tensor.type against PyTorch: every overload (device, dtype, device and
dtype, another tensor, keywords, copy=), what each returns (self or a ToCopyBackward0
cast), and PyTorch's errors: a string is a device to `to` ('float64' is an invalid device
string, not a dtype), arguments that fit no overload are a TypeError listing what was
passed, a device other than the CPU fails as on a CPU-only PyTorch build."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg

CALLS = [
    "x.to('cpu')", "x.to(L.float64)", "x.to('cpu', L.float64)", "x.to(o)",
    "x.to(dtype=L.float64)", "x.to(L.device('cpu'), dtype=L.int64)", "x.to(device='cpu')",
    "x.to(None)", "x.to('cpu', L.float64, True)", "x.to(L.float64, copy=True)",
    "x.to(o, non_blocking=True)", "x.to('cpu:0')", "x.to(L.float64, True, True)",
    "x.to(L.float64, non_blocking=True, copy=False)", "x.to(dtype=None)", "x.to()",
    "x.to(None, None)", "x.to(None, L.float64)", "x.to('cpu', None)", "x.to(tensor=o)",
    "x.to(float)", "x.to(int)", "x.to(bool)",
    "x.type('torch.DoubleTensor')", "x.type(L.int32)", "x.type(dtype=L.int64)",
]
SAME = [  # whether the result is x itself
    "x.to(x)", "x.to(L.float32)", "x.to(L.float32, copy=True)", "x.to('cpu')",
    "x.to('cpu', copy=True)", "x.to(x, copy=True)", "x.to(x, True)",
    "x.to(L.device('cpu'), L.float64, False, True)",
    "x.to(device='cpu', dtype=L.float32)", "x.type('torch.FloatTensor')",
    "x.to('cpu:0')", "x.to(L.device('cpu:0'))", "x.to('cpu:0', L.float32)",
]
ERRORS = [
    "x.to('float64')", "x.to(dtype='float64')", "x.to('cpu', 'float64')", "x.to('cuda')",
    "x.to('cuda:0')", "x.to(1)", "x.to(0)", "x.to(-1)", "x.to(L.float64, L.float32)",
    "x.to(o, L.float32)", "x.to(L.float64, False, False, None)", "x.to('float')",
    "x.to('xla')", "x.to('mps')", "x.to('xpu')", "x.to('cpu', device='cpu')",
    "x.to(L.float64, dtype=L.float32)", "x.to(L.device('cpu'), dtype=L.float64, foo=1)",
    "x.to('a', dtype='b', copy=1)", "x.to('a','b', dtype=1)", "x.to(dtype=1, copy='z')",
    "x.to(copy='z', dtype=1)", "x.to(L.float64, 'b', dtype=1)", "x.to(other=x)",
    "x.to(L.float64, non_blocking=1)", "x.to([1])", "x.to(L.float64, 1)",
    "x.to('cuda:01')", "x.to(device='float64')", "x.to('cpu:x')", "x.to('')",
    "x.type('float64')", "x.cuda()", "x.cuda(0)",
    "x.cuda(-1)", "x.cuda('cpu')", "x.cuda('cuda:0')", "x.cuda(L.device('cuda'))",
    "x.cuda('bogus')",
]


def _run(lib, call):
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    o = lib.tensor([1, 2], dtype=lib.int32)
    return eval(call, {"x": x, "o": o, "L": lib}), x


@pytest.mark.parametrize("call", CALLS)
def test_results_match_pytorch(call):
    (mine, _), (ref, _) = _run(rg, call), _run(torch, call)
    assert str(mine.dtype) == str(ref.dtype)
    assert str(mine.device) == str(ref.device) == "cpu"
    assert mine.tolist() == ref.tolist()
    names = [None if t.grad_fn is None else t.grad_fn.name() for t in (mine, ref)]
    assert names[0] == names[1]


@pytest.mark.parametrize("call", SAME)
def test_returns_self_when_pytorch_does(call):
    (mine, x), (ref, tx) = _run(rg, call), _run(torch, call)
    assert (mine is x) == (ref is tx)


@pytest.mark.parametrize("call", ERRORS)
def test_errors_match_pytorch(call):
    with pytest.raises(Exception) as ref:
        _run(torch, call)
    with pytest.raises(type(ref.value)) as mine:
        _run(rg, call)
    assert str(mine.value) == str(ref.value)


def test_a_cast_and_its_gradient_match_pytorch():
    grads = []
    for lib in (rg, torch):
        x = lib.tensor([1.5, -2.0], requires_grad=True)
        y = x.to("cpu", lib.float64)
        (y * y).sum().backward()
        grads.append((y.grad_fn.name(), str(y.dtype), x.grad.tolist()))
    assert grads[0] == grads[1]


def test_meta_keeps_the_data():
    """No tensors without data here: .to('meta') (a module skeleton for functional_call)
    keeps the values, where PyTorch drops them."""
    x = rg.tensor([1.0, 2.0])
    assert x.to("meta") is x and x.to("meta").tolist() == [1.0, 2.0]


MODULE_CALLS = [
    "()", "('cpu',)", "(L.int64,)", "('cpu', L.int32)", "(L.ones(1, dtype=L.int64),)",
    "(L.float16,)", "(L.ones(1, dtype=L.float64),)", "('float64',)", "('cuda',)",
]


@pytest.mark.parametrize("call", MODULE_CALLS)
def test_module_to_matches_pytorch(call):
    found = []
    for lib in (rg, torch):
        bn = lib.nn.BatchNorm1d(2)
        try:
            bn.to(*eval(call, {"L": lib}))
            found.append((str(bn.weight.dtype), str(bn.num_batches_tracked.dtype)))
        except Exception as e:  # the class and message are what is compared
            found.append((type(e).__name__, str(e)))
    assert found[0] == found[1]


def test_module_to_dtype_keyword_matches_pytorch():
    found = []
    for lib in (rg, torch):
        for kwargs in ({"dtype": lib.bool}, {"dtype": "float64"}, {"dtype": lib.float64}):
            try:
                found.append(str(lib.nn.Linear(2, 2).to(**kwargs).weight.dtype))
            except Exception as e:
                found.append((type(e).__name__, str(e)))
    assert found[:3] == found[3:]


@pytest.mark.parametrize("make", ["L.nn.Linear(2, 2)", "L.nn.BatchNorm1d(2)", "L.nn.ReLU()"])
def test_module_cuda_matches_pytorch(make):
    """A CPU-only build fails at the module's first parameter or buffer; one with none is
    returned as it is."""
    found = []
    for lib in (rg, torch):
        m = eval(make, {"L": lib})
        try:
            found.append(m.cuda() is m)
        except Exception as e:
            found.append((type(e).__name__, str(e)))
    assert found[0] == found[1]


CREATIONS = ["L.ones(2, device='cuda')", "L.zeros(2, device=0)",
             "L.tensor([1.0], device='cuda:0')",
             "L.zeros_like(L.ones(2), device=L.device('cuda'))", "L.arange(3, device='cpu')",
             "L.full((2,), 1.0, device='cpu:0')", "L.randn(2, device=-1)"]


@pytest.mark.parametrize("call", CREATIONS)
def test_creation_devices_match_pytorch(call):
    """device= takes the CPU only, failing for others as a CPU-only PyTorch build does."""
    found = []
    for lib in (rg, torch):
        try:
            found.append(eval(call, {"L": lib}).tolist())
        except Exception as e:
            found.append((type(e).__name__, str(e)))
    assert found[0] == found[1]


@pytest.mark.parametrize("make", ["nn.Linear(2, 2, device='cuda')", "nn.Linear(2, 2, device='cpu')",
                                  "nn.LayerNorm(2, device=0)", "nn.Embedding(3, 2, device='cuda')",
                                  "nn.LSTM(2, 2, device='cuda')",
                                  "nn.MultiheadAttention(4, 2, device='cuda')"])
def test_module_devices_match_pytorch(make):
    found = []
    for lib in (rg, torch):
        try:
            eval(make, {"nn": lib.nn})
            found.append("made")
        except Exception as e:
            found.append((type(e).__name__, str(e)))
    assert found[0] == found[1]
