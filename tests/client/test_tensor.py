"""Tensor API against PyTorch: creation, attributes, conversion, operators (reflected and
in place), shape methods, indexing, reprs and error messages."""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(3)
A = R.standard_normal((3, 4)).astype("float32")
B = R.standard_normal((4,)).astype("float32")


def both(array, requires_grad=False):
    return rg.tensor(array, requires_grad=requires_grad), torch.tensor(array,
                                                                         requires_grad=requires_grad)


def same_error(fn_ours, fn_theirs, exc=RuntimeError):
    with pytest.raises(exc) as theirs:
        fn_theirs()
    with pytest.raises(exc) as ours:
        fn_ours()
    assert str(ours.value) == str(theirs.value)


# --- creation ------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [
    "zeros(2, 3)", "zeros((2, 3), dtype={m}.float64)", "ones(4)", "ones([2, 2], dtype={m}.int32)",
    "full((2, 2), 1.5)", "full((2,), 7)", "full((2,), True)", "empty(2, 0)", "eye(3)",
    "eye(2, 3)", "arange(5)", "arange(1, 4, 0.5)", "arange(0, 1, 0.25)", "arange(10, 0, -3)",
    "arange(-2.5, 3.9, 1.5, dtype={m}.int64)", "arange(-3.3, 7.7, 0.7, dtype={m}.float64)",
    "arange(2.7, dtype={m}.int64)",
    "linspace(0, 1, 5)", "linspace(-2, 2, steps=7, dtype={m}.float64)",
    "tensor([[1, 2], [3, 4]])", "tensor(3.5)", "tensor([True, False])",
    "tensor([1.0, 2.0], dtype={m}.float16)", "as_tensor([1, 2], dtype={m}.float32)",
    "zeros_like({m}.ones(2, 3))", "ones_like({m}.ones(2, dtype={m}.int64))",
    "full_like({m}.ones(2), 3.0)", "empty_like({m}.ones(3)).shape",
])
def test_creation_matches(expr):
    ours = eval(expr.format(m="rg"), {**vars(rg), "rg": rg})
    theirs = eval(expr.format(m="torch"), {**vars(torch), "torch": torch})
    assert repr(ours) == repr(theirs)


def test_random_creation_shapes_dtypes_and_seed():
    rg.manual_seed(5)
    a = rg.randn(2, 3)
    rg.manual_seed(5)
    assert rg.randn(2, 3).tolist() == a.tolist()
    assert rg.rand(4).dtype == rg.float32 and 0 <= rg.rand(100).min().item() < 1
    r = rg.randint(0, 5, (20,))
    assert r.dtype == rg.int64 and r.shape == rg.Size([20]) and 0 <= r.min().item() <= 4
    assert rg.randint(3, (2,)).max().item() < 3
    assert rg.randn_like(a).shape == a.shape and rg.rand_like(a).dtype == a.dtype
    assert sorted(rg.randperm(6).tolist()) == list(range(6))


def test_from_numpy_and_numpy_round_trip():
    arr = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = rg.from_numpy(arr)
    assert t.dtype == rg.float64 and t.numpy().tolist() == arr.tolist()
    assert np.asarray(t * 2).tolist() == (arr * 2).tolist()
    with pytest.raises(TypeError):
        rg.from_numpy([1, 2])


# Found by a differential hunt: a numpy scalar carries its dtype into tensor() as PyTorch's
# does (np.float64(1.5) was float32, np.int32(3) int64), promoted with the rest of a list.
DATA_DTYPES = [
    np.float64(1.5), np.float32(2), np.int32(3), np.uint8(7), np.bool_(True), np.float16(1),
    [np.float64(1.0), 2.0], [np.float32(1), 2.0], [np.int32(1), 2], [np.int64(1), 2.5],
    [np.int32(1), np.int32(2)], [np.float16(1), 1], [np.int8(1), True], [True, 2.5],
    [[np.float64(1)], [2.0]], [np.array([1, 2], dtype=np.int32), [3, 4]], [], [1, 2.0],
]


@pytest.mark.parametrize("data", DATA_DTYPES, ids=repr)
@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy")
def test_tensor_infers_pytorchs_dtype_from_numpy_scalars(data):
    assert str(rg.tensor(data).dtype) == str(torch.tensor(data).dtype)
    assert rg.tensor(data).tolist() == torch.tensor(data).tolist()


def test_requires_grad_on_integers_is_refused_with_pytorch_message():
    same_error(lambda: rg.tensor([1, 2], requires_grad=True),
               lambda: torch.tensor([1, 2], requires_grad=True))
    same_error(lambda: rg.ones(2, dtype=rg.long).requires_grad_(),
               lambda: torch.ones(2, dtype=torch.long).requires_grad_())


# --- attributes and conversion ---------------------------------------------------------------
def test_attributes():
    (a, t) = both(A, requires_grad=True)
    y, yt = a * 2, t * 2
    assert a.shape == t.shape and repr(a.shape) == repr(t.shape)
    assert a.size() == t.size() and a.size(1) == t.size(1) and a.size(-1) == 4
    assert a.dim() == 2 and a.ndim == 2 and a.numel() == 12 and len(a) == 3
    assert str(a.dtype) == str(t.dtype) and str(a.device) == "cpu"
    assert a.is_leaf and not y.is_leaf and y.requires_grad and a.requires_grad
    assert a.grad_fn is None and type(y.grad_fn).__name__ == type(yt.grad_fn).__name__
    (fn, _), (none, _) = y.grad_fn.next_functions
    assert type(fn).__name__ == "AccumulateGrad" and fn.variable is a and none is None
    assert a.element_size() == 4 and a.type() == "torch.FloatTensor"
    assert a.is_floating_point() and not rg.ones(1, dtype=rg.int64).is_floating_point()
    close(a.T, t.T)
    close(a.mT, t.mT)
    close(a.t(), t.t())
    assert type(a.T.grad_fn).__name__ == "PermuteBackward0"
    assert type(a.mT.grad_fn).__name__ == "TransposeBackward0"
    same_error(lambda: rg.ones(3).mT, lambda: torch.ones(3).mT)
    same_error(lambda: a.size(2), lambda: t.size(2), IndexError)


def test_data_aliases_the_tensor():
    a, t = both(A, requires_grad=True)
    for x in (a, t):
        x.data.mul_(2)
    close(a.detach(), t.detach())
    d = a.detach()
    with rg.no_grad():
        a.add_(1)
    close(d, t.detach() + 1)
    assert not a.data.requires_grad


def test_conversions():
    a, t = both(A)
    assert a.tolist() == t.tolist()
    assert rg.tensor(2.5).item() == 2.5 and isinstance(rg.tensor(3).item(), int)
    assert float(rg.tensor([1.5])) == 1.5 and int(rg.tensor(7)) == 7
    assert bool(rg.tensor(1)) is True
    for m in ("float", "double", "long", "int", "bool", "half"):
        close(getattr(a, m)(), getattr(t, m)(), what=m)
    close(a.to(rg.float64), t.to(torch.float64))
    close(a.to("cpu", rg.int32), t.to("cpu", torch.int32))
    close(a.to(rg.ones(1, dtype=rg.float64)), t.to(torch.ones(1, dtype=torch.float64)))
    assert type(rg.tensor(A, requires_grad=True).double().grad_fn).__name__ == "ToCopyBackward0"
    same_error(lambda: a.item(), lambda: t.item())
    same_error(lambda: bool(a), lambda: bool(t))
    same_error(lambda: float(a), lambda: float(t), ValueError)
    x, xt = both(A, requires_grad=True)
    same_error(lambda: x.numpy(), lambda: xt.numpy())
    assert f"{rg.tensor(3.14159):.2f}" == f"{torch.tensor(3.14159):.2f}"
    assert [v.item() for v in rg.tensor([1, 2])] == [1, 2]


# --- operators -------------------------------------------------------------------------------
BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
          operator.floordiv, operator.mod, operator.eq, operator.ne, operator.lt,
          operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("op", BINARY, ids=lambda o: o.__name__)
@pytest.mark.parametrize("other", ["tensor", 2, 1.5], ids=["tensor", "int", "float"])
def test_binary_operators_and_reflections(op, other):
    positive = np.abs(A) + 0.5
    a, t = both(positive)
    o_ours, o_theirs = (rg.tensor(B + 3), torch.tensor(B + 3)) if other == "tensor" else (
        other, other)
    close(op(a, o_ours), op(t, o_theirs), what="forward")
    if other != "tensor":
        close(op(o_ours, a), op(o_theirs, t), what="reflected")


@pytest.mark.parametrize("name", ["iadd", "isub", "imul", "itruediv", "ipow"])
def test_inplace_operators(name):
    a, t = both(np.abs(A) + 0.5)
    ours, theirs = a, t
    ours = getattr(operator, name)(ours, 2)
    theirs = getattr(operator, name)(theirs, 2)
    assert ours is a
    close(ours, theirs)


def test_matmul_operator_and_grad_fn_names():
    a, t = both(A, requires_grad=True)
    m, mt = both(R.standard_normal((4, 5)).astype("float32"))
    for ours, theirs in ((a @ m, t @ mt), (2 / a, 2 / t), (1 - a, 1 - t), (2 ** a, 2 ** t),
                         (a ** 2, t ** 2), (a ** a, t ** t), (-a, -t), (abs(a), abs(t))):
        close(ours, theirs)
        assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__


def test_bool_logic_operators():
    m, mt = both(A > 0)
    n, nt = both(B > 0)
    for op in (operator.and_, operator.or_, operator.xor):
        close(op(m, n), op(mt, nt))
    close(~m, ~mt)


def test_unsupported_operand_gives_python_type_error():
    a, t = both(A)
    same_error(lambda: a + "x", lambda: t + "x", TypeError)
    assert (a == None) is False  # noqa: E711


def test_inplace_errors_match_pytorch():
    x, xt = both(A, requires_grad=True)
    same_error(lambda: x.add_(1), lambda: xt.add_(1))
    same_error(lambda: rg.ones(3, dtype=rg.long).add_(1.5),
               lambda: torch.ones(3, dtype=torch.long).add_(1.5))
    same_error(lambda: rg.ones(3).add_(rg.ones(2, 3)), lambda: torch.ones(3).add_(torch.ones(2, 3)))
    with rg.no_grad():
        x.add_(1)
    assert x.is_leaf and x.requires_grad
    y = x * 1
    y.mul_(3)
    assert type(y.grad_fn).__name__ == "MulBackward0"


def test_zero_fill_copy():
    a, t = both(A)
    a.zero_(), t.zero_()
    close(a, t)
    a.fill_(2.5), t.fill_(2.5)
    close(a, t)
    a.copy_(rg.tensor(B)), t.copy_(torch.tensor(B))
    close(a, t)


# --- shapes and indexing ------------------------------------------------------------------------
SHAPE_EXPRS = [
    "x.view(4, 3)", "x.view(-1)", "x.reshape(2, -1)", "x.reshape((6, 2))", "x.view_as(x.T)",
    "x.expand(2, 3, 4)", "x[None].expand(5, -1, -1)", "x.permute(1, 0)", "x.permute((1, 0))",
    "x.flatten()", "x.unsqueeze(0)", "x.unsqueeze(-1).squeeze(-1)", "x[None].squeeze()",
    "x.transpose(0, 1)", "x.repeat(2, 1)", "x.flip(0)", "x.flip(0, 1)",
    "x.split(2)[1]", "x.split([1, 2])[0]", "x.chunk(2, 1)[1]", "x.unbind(1)[2]",
    "m.cat([x, x])", "m.cat([x, x], dim=1)", "m.stack([x, x], 1)", "x.max()", "x.max(1)[0]",
    "x.max(1)[1]", "x.max(dim=0).values", "x.min(0, keepdim=True).indices", "x.min()",
    "m.max(x, x * 2)", "x.narrow(1, 1, 2)", "m.einsum('ij,kj->ik', x, x)",
    "m.where(x > 0, x, 0.0)", "x.where(x > 0, -1.0)", "m.broadcast_to(x, (2, 3, 4))",
    "x.sum(dtype=m.float64)", "x.softmax(-1)", "x.clone()", "x.masked_fill(x > 0, 0.5)",
    "m.masked_fill(x, x < 0, -1.0)",
]


@pytest.mark.parametrize("expr", SHAPE_EXPRS)
def test_shape_methods(expr):
    x, xt = both(A, requires_grad=True)
    ours = eval(expr, {"x": x, "m": rg})
    theirs = eval(expr, {"x": xt, "m": torch})
    close(ours, theirs)
    if theirs.grad_fn is not None and ours.grad_fn is not None:
        if "einsum" not in expr:  # PyTorch names einsum after the kernels it lowers to
            assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
        seed = R.standard_normal(tuple(theirs.shape)).astype("float32")
        ours.backward(rg.tensor(seed, dtype=ours.dtype))
        theirs.backward(torch.tensor(seed, dtype=theirs.dtype))
        close(x.grad, xt.grad, what="grad")


INDEXES = ["0", "-1", "1:", "::2", "None", "..., 1", "0, 1:", "1:, 0", ":, None",
           "[0, 2]", "x > 0", "[[0, 1], [2, 2]]", "0, [1, 3]", "..., [0, 0]"]


@pytest.mark.parametrize("key", INDEXES)
def test_getitem(key):
    x, xt = both(A, requires_grad=True)
    ours, theirs = eval(f"x[{key}]", {"x": x}), eval(f"x[{key}]", {"x": xt})
    close(ours, theirs)
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
    ours.sum().backward(), theirs.sum().backward()
    close(x.grad, xt.grad, what="grad")


@pytest.mark.parametrize("key,value", [("0", "5.0"), ("1:, 2", "-1"), ("x > 0", "0.0"),
                                       ("0", "v"), (":, 1", "v[:3]"), ("[0, 2]", "v")])
def test_setitem(key, value):
    x, xt = both(A)
    v, vt = both(B)
    exec(f"x[{key}] = {value}", {"x": x, "v": v})
    exec(f"x[{key}] = {value}", {"x": xt, "v": vt})
    close(x, xt)


def test_setitem_is_differentiable_for_the_value():
    v, vt = both(B, requires_grad=True)
    out, outt = rg.zeros(3, 4), torch.zeros(3, 4)
    out[1] = v * 2
    outt[1] = vt * 2
    (out * 3).sum().backward(), (outt * 3).sum().backward()
    close(v.grad, vt.grad)


def test_shape_errors_are_raised_at_the_line_with_pytorch_wording():
    same_error(lambda: rg.ones(2, 3) + rg.ones(4), lambda: torch.ones(2, 3) + torch.ones(4))
    same_error(lambda: rg.ones(2, 2).view(3, -1), lambda: torch.ones(2, 2).view(3, -1))
    same_error(lambda: rg.ones(2, 3) @ rg.ones(2, 3), lambda: torch.ones(2, 3) @ torch.ones(2, 3))
    same_error(lambda: rg.ones(2, 3).sum(2), lambda: torch.ones(2, 3).sum(2), IndexError)
    same_error(lambda: rg.ones(3)[5], lambda: torch.ones(3)[5], IndexError)
    same_error(lambda: rg.ones(2, 3).transpose(0, 2), lambda: torch.ones(2, 3).transpose(0, 2),
               IndexError)


# --- repr ------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [
    "m.tensor([1.0, 2.5])", "m.tensor([[1e-5, 1e5]])", "m.arange(2000.0)", "m.tensor(3)",
    "m.tensor([1, 2], dtype=m.int32)", "m.tensor([1.0], dtype=m.float64, requires_grad=True)",
    "m.ones(2, requires_grad=True) * 2", "m.zeros(0, 3)", "m.tensor([True])",
    "m.nn.Parameter(m.ones(2))",
])
def test_repr(expr):
    assert repr(eval(expr, {"m": rg})) == repr(eval(expr, {"m": torch}))


def test_requires_grad_flag_changes_match():
    x, xt = both(A, requires_grad=True)
    y, yt = x * 2, xt * 2
    assert y.requires_grad_(True) is y and yt.requires_grad_(True) is yt
    same_error(lambda: setattr(y, "requires_grad", False),
               lambda: setattr(yt, "requires_grad", False))
    same_error(lambda: setattr(y, "requires_grad", True),
               lambda: setattr(yt, "requires_grad", True))
    same_error(lambda: y.requires_grad_(False), lambda: yt.requires_grad_(False))
    same_error(lambda: setattr(rg.ones(2, dtype=rg.long), "requires_grad", True),
               lambda: setattr(torch.ones(2, dtype=torch.long), "requires_grad", True))
    v = rg.tensor([1.0, 2.0], requires_grad=True)
    v.backward(rg.tensor([3.0, 4.0]))
    assert v.grad.tolist() == [3.0, 4.0]


def test_contains():
    a, t = both(np.array([1.0, 2.0, 3.0], dtype="float32"))
    assert (2 in a) == (2 in t) and (5 in a) == (5 in t)
    same_error(lambda: "x" in a, lambda: "x" in t)


def test_value_dependent_selections():
    x, xt = both(A, requires_grad=True)
    for expr in ("x.sort(1)", "x.sort(0, descending=True)", "x.topk(2)",
                 "x.topk(2, dim=0, largest=False)", "m.sort(x, dim=-1)", "x.median(1)",
                 "x.median(0, keepdim=True)", "x.kthvalue(2, 1)", "m.kthvalue(x, 3, 0, True)"):
        ours, theirs = eval(expr, {"x": x, "m": rg}), eval(expr, {"x": xt, "m": torch})
        close(ours.values, theirs.values, what=expr)
        close(ours.indices, theirs.indices, what=expr)
        assert type(ours.values.grad_fn).__name__ == type(theirs.values.grad_fn).__name__
        (ours.values * 2).sum().backward(), (theirs.values * 2).sum().backward()
    close(x.grad, xt.grad)
    close(x.median(), xt.median())
    assert type(x.median().grad_fn).__name__ == type(xt.median().grad_fn).__name__
    assert repr(x.detach().max(1)).split("(")[0] == "torch.return_types.max"
    close(x.argsort(1), xt.argsort(1))
    close(rg.nonzero(x > 0), torch.nonzero(xt > 0))
    for a, b in zip(rg.where(x > 0), torch.where(xt > 0)):
        close(a, b)
    u = np.array([3, 1, 2, 3, 1])
    for a, b in zip(rg.unique(rg.tensor(u), return_inverse=True, return_counts=True),
                    torch.unique(torch.tensor(u), return_inverse=True, return_counts=True)):
        close(a, b)
    close(rg.tensor(u).count_nonzero(), torch.tensor(u).count_nonzero())
