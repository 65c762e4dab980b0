"""Views with PyTorch's strides (client/_strides.py, _views.py): random chains of every
view op (basic indexing with steps, narrow, squeeze, unsqueeze, transpose, permute,
split/chunk pieces, reshape/view/flatten/unflatten, expand, contiguous, diagonal), then an
in-place change of the view, of a second view or of the root (t_(), transpose_(),
squeeze_() of no dim, one and several, unsqueeze_() among them), the same program in each
library: values, versions, strides, storage offsets, is_contiguous, grad_fn names,
gradients and errors (view's "not compatible", expand's "more than one element", split's
"multiple views") compared with PyTorch. REMOTEGRAD_VIEW_PROGRAMS scales the number of
programs (120 by default)."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pytest
import torch

import remotegrad as rg

PROGRAMS = int(os.environ.get("REMOTEGRAD_VIEW_PROGRAMS", "120"))
_STEPS = ["slice", "select", "narrow", "unsqueeze", "squeeze", "transpose", "permute",
          "split", "reshape", "reshape", "view", "flatten", "unflatten", "expand",
          "contiguous", "diagonal"]


def _factors(n: int, rng: random.Random) -> list:
    """A random shape of n elements, with -1 in one place now and then."""
    shape = []
    while n > 1 and len(shape) < 3:
        d = rng.choice([k for k in range(2, n + 1) if n % k == 0])
        shape.append(d)
        n //= d
    shape += [n] if n != 1 or not shape else []
    if rng.random() < 0.3:
        shape.insert(rng.randint(0, len(shape)), 1)
    rng.shuffle(shape)
    if rng.random() < 0.3:
        shape[rng.randrange(len(shape))] = -1
    return shape


def _step(rng: random.Random, shape: list) -> str:
    """One view op on a tensor of `shape` (updated to the result's)."""
    n = len(shape)
    kind = rng.choice(_STEPS)
    if not n and kind not in ("unsqueeze", "reshape", "view", "flatten", "expand",
                              "contiguous"):
        kind = "unsqueeze"
    d = rng.randrange(n) if n else 0
    if kind == "slice":
        lo, step = rng.randrange(shape[d] + 1), rng.randint(1, 2)
        shape[d] = len(range(lo, shape[d], step))
        return f"[{':,' * d}{lo}::{step}]"
    if kind == "select" and shape[d]:
        i = rng.randrange(-shape[d], shape[d])
        shape.pop(d)
        return f"[{':,' * d}{i}]"
    if kind == "select":
        return "[...]"
    if kind == "narrow":
        length = rng.randint(0, shape[d])
        start = rng.randint(0, shape[d] - length)
        shape[d] = length
        return f".narrow({d}, {start}, {length})"
    if kind == "unsqueeze":
        d = rng.randint(0, n)
        shape.insert(d, 1)
        return f".unsqueeze({d})"
    if kind == "squeeze":
        shape[:] = [s for s in shape if s != 1]
        return ".squeeze()"
    if kind == "transpose":
        e = rng.randrange(n)
        shape[d], shape[e] = shape[e], shape[d]
        return f".transpose({d}, {e})"
    if kind == "permute":
        order = list(range(n))
        rng.shuffle(order)
        shape[:] = [shape[i] for i in order]
        return f".permute({tuple(order)})"
    if kind == "split":
        size = rng.randint(1, 2)
        pieces = [min(size, shape[d] - k) for k in range(0, shape[d], size)] or [0]
        i = rng.randrange(len(pieces))
        shape[d] = pieces[i]
        return f".split({size}, {d})[{i}]"
    if kind in ("reshape", "view"):
        total = math.prod(shape)
        new = _factors(total, rng) if total else [0, *rng.sample([1, 2, 3], 1)]
        shape[:] = [total // -math.prod(new) if s == -1 else s for s in new] if total \
            else new
        return f".{kind}({', '.join(map(str, new))})"
    if kind == "flatten":
        if not n:
            shape[:] = [1]
            return ".flatten()"
        e = rng.randrange(d, n)
        shape[d:e + 1] = [math.prod(shape[d:e + 1])]
        return f".flatten({d}, {e})"
    if kind == "unflatten":
        inner = _factors(shape[d], rng) if shape[d] else [0, 1]
        shape[d:d + 1] = [shape[d] // -math.prod(inner) if s == -1 else s for s in inner] \
            if shape[d] else inner
        return f".unflatten({d}, {tuple(inner)})"
    if kind == "diagonal" and n >= 2:
        e = rng.choice([k for k in range(n) if k != d])
        offset = rng.randint(-shape[d], shape[e])
        size = max(min(shape[d] + min(offset, 0), shape[e] - max(offset, 0)), 0)
        shape[:] = [s for k, s in enumerate(shape) if k not in (d, e)] + [size]
        return f".diagonal({offset}, {d - n if rng.random() < 0.3 else d}, {e})"
    if kind == "diagonal":
        return ".contiguous()"

        new = [rng.choice([2, 3]) if s == 1 and rng.random() < 0.7 else s for s in shape]
        if rng.random() < 0.4 or not new:
            new.insert(0, rng.randint(1, 2))
        shape[:] = new
        return f".expand({', '.join(map(str, new))})"
    return ".contiguous()"


_INPLACE = ["add_(1.5)", "mul_(w)", "zero_()", "fill_(2.0)", "exp_()", "copy_(w)",
            "sub_(w * 2)"]
_RESHAPES = ["t_()", "transpose_(0, -1)", "unsqueeze_(0)", "squeeze_()", "squeeze_(0)",
             "squeeze_((0, -1))"]


def _make(seed: int) -> tuple[str, tuple]:
    rng = random.Random(seed)
    shape = [rng.randint(1, 4) for _ in range(rng.randint(1, 3))]
    vshape = list(shape)
    chain = "".join(_step(rng, vshape) for _ in range(rng.randint(1, 4)))
    target = rng.choice(["v", "c", "v2", "c"])
    op = rng.choice(_INPLACE + (_RESHAPES if target == "c" else []))
    if op == "t_()" and len(shape) > 2:
        op = "transpose_(0, 1)"
    wshape = tuple(shape) if target == "c" else tuple(vshape)
    src = (f"c = x * 1; v = c{chain}; v2 = c{chain}; "
           f"w = y.sum() * lib.ones({wshape}, dtype=lib.float64); "
           f"{target}.{op}; out = (v * 3).sum() + (c * c).sum() + (v2 * 5).sum()")
    return src, tuple(shape)


def _layout(t) -> tuple:
    return tuple(t.stride()), t.storage_offset(), t.is_contiguous()


def _run(lib, src: str, shape: tuple, seed: int, grad: bool):
    """What the program shows, or the error it stops at (its type and first words)."""
    x0 = np.random.default_rng(seed).standard_normal(shape)
    x = lib.tensor(x0.tolist(), dtype=lib.float64, requires_grad=grad)
    y = lib.tensor([0.5, 1.5], dtype=lib.float64, requires_grad=grad)
    scope = {"x": x, "y": y, "lib": lib}
    try:
        exec(src, scope)
    except RuntimeError as e:
        return ("error", str(e)[:60])
    c, v, v2, out = (scope[k] for k in ("c", "v", "v2", "out"))
    seen = {"values": [t.tolist() for t in (c, v, v2)],
            "versions": (c._version, v._version), "layout": [_layout(t) for t in (c, v)],
            "names": [type(t.grad_fn).__name__ for t in (c, v)]}
    if grad:
        try:
            out.backward()
        except RuntimeError as e:
            return {**seen, "backward": str(e)[:60]}
        seen["grads"] = [None if t.grad is None else t.grad.tolist() for t in (x, y)]
    return seen


def _same(got, want) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(
            _same(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(got) == len(want) and all(
            _same(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        return isinstance(got, float) and bool(np.isclose(got, want, equal_nan=True))
    return got == want




@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("part", range(4))
def test_random_strided_view_programs_match_pytorch(part, grad):
    kinds = {}
    for seed in range(part * PROGRAMS // 4, (part + 1) * PROGRAMS // 4):
        src, shape = _make(seed)
        want = _run(torch, src, shape, seed, grad)
        got = _run(rg, src, shape, seed, grad)
        assert _same(got, want), f"{src}\n  torch: {want}\n  remotegrad: {got}"
        kind = want[0] if isinstance(want, tuple) else "ran"
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds.get("ran", 0) >= PROGRAMS // 8, kinds  # most programs run to the end


def test_reshape_is_a_view_exactly_where_pytorchs_is():
    for lib in (torch, rg):
        c = lib.arange(6.0).reshape(2, 3)
        c.t().reshape(6).add_(1)  # a copy: c keeps its values
        c.t().reshape(3, 2, 1).mul_(2)  # a view: c doubles
        c[:, :2].reshape(4).add_(100)  # a copy
        c.view(6)[::2].sub_(1)
        assert c.tolist() == [[-1.0, 2.0, 3.0], [6.0, 7.0, 10.0]]


def test_reshape_and_flatten_name_their_nodes_as_pytorch():
    srcs = ["c.reshape(6)", "c.t().reshape(3, 2, 1)", "c.t().reshape(6)", "c.t().flatten()",
            "c.t().unsqueeze(0).flatten(0, 1)", "c[:, :2].reshape(4)", "c.view(3, 2)",
            "c.t().view(3, 2, 1)", "c.unflatten(1, (3, 1))", "c.t().contiguous()",
            "c.t().reshape(6).grad_fn.next_functions[0][0]"]
    for src in srcs:
        names = []
        for lib in (torch, rg):
            c = lib.arange(6.0).reshape(2, 3).requires_grad_() * 1
            out = eval(src, {"c": c})
            names.append(type(out if not hasattr(out, "grad_fn") else out.grad_fn).__name__)
        assert names[0] == names[1], src


def test_view_across_strides_raises_pytorchs_error():
    for lib in (torch, rg):
        c = lib.zeros(2, 3)
        with pytest.raises(RuntimeError, match=r"view size is not compatible with input "
                           r"tensor's size and stride .* Use \.reshape\(\.\.\.\) instead\."):
            c.t().view(6)


def test_in_place_on_an_expanded_view_raises_pytorchs_error():
    for lib in (torch, rg):
        c = lib.zeros(3)
        e = c.expand(2, 3)
        for change in ("e.add_(1)", "e.copy_(lib.ones(2, 3))", "e.fill_(lib.tensor(1.0))"):
            with pytest.raises(RuntimeError, match="more than one element of the written-to "
                               "tensor refers to a single memory location"):
                eval(change)
        e.fill_(2.0)  # a fill with a number is allowed: the one element takes it
        e[1] = lib.tensor([1.0, 2.0, 3.0])  # a row of e is no overlap
        assert c.tolist() == [1.0, 2.0, 3.0] and e.tolist() == [[1.0, 2.0, 3.0]] * 2
        assert c._version == e._version == 2


@pytest.mark.parametrize("fill", ["c[0].expand(2, 3).zero_()",
                                  "c[:, :1].expand(2, 3).fill_(1.0)",
                                  "c[0].expand(2, 3)[0].zero_()",
                                  "c[0].expand(2, 3).zero_(); c.mul_(2)"])
def test_fill_through_an_expanded_view(fill):
    """PyTorch's backward through a fill of an expanded view fails (its CopySlices copies
    the gradient through the view); a row of that view repeats nothing and has one."""
    seen = []
    for lib in (torch, rg):
        x = lib.arange(6.0).reshape(2, 3).requires_grad_()
        c = x * 1
        exec(fill, {"c": c})
        for how in ("backward", "grad"):
            try:
                if how == "backward":
                    c.sum().backward(retain_graph=True)
                    seen.append(x.grad.tolist())
                else:
                    seen.append(lib.autograd.grad(c.sum(), x)[0].tolist())
            except RuntimeError as e:
                seen.append(str(e))
        seen.append(c.tolist())
    assert seen[:3] == seen[3:]
    assert "more than one element" in str(seen) or "[0]" in fill


def test_views_follow_t_and_set_as_pytorchs():
    for lib in (torch, rg):
        c = lib.arange(6.0).reshape(2, 3)
        v = c[0]
        c.t_()
        assert (c.stride(), c.is_contiguous(), c[0].stride()) == ((1, 3), False, (3,))
        c.add_(1)
        v.mul_(2)
        assert c.tolist() == [[2.0, 4.0], [4.0, 5.0], [6.0, 6.0]]
        assert v.tolist() == [2.0, 4.0, 6.0]
        w = c[0]  # the first element of v, and one of c's old second row
        c.set_(lib.zeros(2, 3))
        v.add_(1)  # v and w keep the old elements, which they share; c has new ones
        assert w.tolist() == [3.0, 4.0] and v.tolist() == [3.0, 5.0, 7.0]
        assert c.tolist() == [[0.0] * 3] * 2


def test_views_of_a_gone_tensor_still_share_its_elements():
    for lib in (torch, rg):
        c = lib.arange(6.0).reshape(2, 3)
        v, w = c[0], c[:, 0]
        del c
        v.add_(1)
        assert w.tolist() == [1.0, 3.0]


def test_strides_and_contiguity_as_pytorchs():
    srcs = ["c.t()", "c[:, 1:]", "c[1:, ::2]", "c[None, :, None]", "c.unsqueeze(2)",
            "c[0].expand(4, 3)", "c.expand(1, 2, 3)", "c[:, :1]", "c.t()[1:].reshape(2, 2)",
            "c.narrow(1, 3, 0)", "c.split(1, 1)[2]", "c[0, 0].expand(2)", "c[0, 0].view(1, 1)",
            "c.t().contiguous()", "c.flatten()[2:].unflatten(0, (2, 2))", "c[:, ::2].t()",
            "c.select(1, -1)", "c.t().select(0, 2)"]
    for src in srcs:
        found = []
        for lib in (torch, rg):
            c = lib.arange(6.0).reshape(2, 3)
            out = eval(src, {"c": c})
            found.append(_layout(out) + (out.stride(-1),))
        assert found[0] == found[1], src


def test_writes_through_a_0d_root_and_of_negative_zero_as_pytorchs():
    srcs = ["c = x.sum() * 1; v = c.unsqueeze(0); v.mul_(3); out = c",
            "c = x.sum() * 1; v = c.expand(2); c.add_(1); out = v",
            "c = x * 1; v = c[..., ::2]; v.neg_(); v.mul_(0); out = c",
            "c = x * 1; v = c.transpose(0, 0) if c.dim() == 0 else c.t(); out = v",
            "c = x.sum() * 1; v = c.transpose(0, -1).swapaxes(0, 0); v.sub_(1); out = c"]
    for src in srcs:
        seen = []
        for lib in (torch, rg):
            x = lib.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
            scope = {"x": x}
            exec(src, scope)
            out, c = scope["out"], scope["c"]
            signs = np.signbit(np.array(out.tolist())).tolist()
            out.sum().backward()
            seen.append((out.tolist(), signs, type(c.grad_fn).__name__, x.grad.tolist()))
        assert seen[0] == seen[1], src


@pytest.mark.parametrize("src", [
    "c.add_(c[0])", "c[0].add_(c[1])", "c[0].add_(c[0])", "c[:, :2].add_(c[:, 1:])",
    "c[0].copy_(c.view(6)[:3])", "c[..., ::2].add_(c[..., 1:])", "c[0].copy_(c[1])",
    "c.view(6)[1:4].mul_(c.view(6)[2:5])", "c.unsqueeze(0).mul_(c)",
    "c[0].copy_(c.view(6)[1:4])", "c.view(3, 2).add_(c.view(3, 2))",
    "v = c.view(6); c.mul_(v.view(2, 3))", "c.add_(c.t().t())",
    # the overlap comes before the sizes (PyTorch's TensorIterator checks it first)
    "c.t().add_(c)", "c.view(3, 2).add_(c)", "c[0].add_(c)", "c.t().mul_(c[0])",
    "c.view(6)[1:4].add_(c.view(6)[2:6])", "c.t().add_(c, alpha=2)",
    "c.t().add_(c.t()[0:2])", "c.t().add_(c.t()[0:2].sum())", "c.t().addcmul_(c, c)",
    "c.t().lerp_(c, 0.5)", "c.t().clamp_min_(c)", "c.t().scatter_(0, c.long(), c)",
    "c.t().scatter_(0, lib.tensor([[0]]), c)"])
def test_an_input_that_partly_overlaps_the_written_view_is_pytorchs_error(src):
    """PyTorch's assert_no_partial_overlap: dense views of one storage whose ranges meet
    and are not the same elements in the same order (c.unsqueeze(0) and c differ in
    strides); a view that is not dense (c[:, 1:]) is let be."""
    seen = []
    for lib in (torch, rg):
        c = lib.arange(6.0).reshape(2, 3)
        try:
            exec(src, {"c": c, "lib": lib})
            seen.append(c.tolist())
        except RuntimeError as e:
            seen.append(str(e))
    assert seen[0] == seen[1]


@pytest.mark.parametrize("src", [
    "lib.tensor(1.0).unflatten(0, (1,))", "lib.zeros(2, 6).unflatten(1, (4, 2))",
    "lib.zeros(2, 6).unflatten(1, ())", "lib.zeros(2, 6).unflatten(2, (3, 2))",
    "lib.zeros(2, 6).unflatten(1, (-1, -1))", "lib.zeros(2, 6).unflatten(1, (-1, 5))"])
def test_unflatten_errors_are_pytorchs(src):
    """PyTorch appends its C++ trace to the checks it wraps: the message begins alike."""
    raised = []
    for lib in (torch, rg):
        with pytest.raises((RuntimeError, IndexError)) as info:
            eval(src, {"lib": lib})
        raised.append(info.value)
    assert type(raised[0]) is type(raised[1])
    assert str(raised[0]).startswith(str(raised[1]))


@pytest.mark.parametrize("src", [
    "lib.zeros(3).squeeze((0, -1))", "lib.zeros(3, 1).squeeze((1, 1))",
    "lib.zeros(3, 1).squeeze_((1, -1))", "lib.zeros(3, 1).squeeze_((1, 5))",
    "lib.zeros(()).squeeze((0, -1))"])
def test_squeeze_of_a_dim_twice_is_pytorchs_error(src):
    raised = []
    for lib in (torch, rg):
        with pytest.raises((RuntimeError, IndexError)) as info:
            eval(src, {"lib": lib})
        raised.append(info.value)
    assert type(raised[0]) is type(raised[1]) and str(raised[0]) == str(raised[1])


@pytest.mark.parametrize("src", [
    "c.transpose_(0, 1)", "c.transpose_(-1, 0)", "c.squeeze_()", "c.squeeze_(1)",
    "c.squeeze_((1, 3))", "c.squeeze_(dim=[1])", "c.unsqueeze_(0)", "c.unsqueeze_(dim=-1)"])
def test_in_place_shape_changes_name_their_nodes_as_pytorch(src):
    seen = []
    for lib in (torch, rg):
        x = lib.arange(6.0).reshape(2, 1, 3, 1).requires_grad_()
        c = x * 1
        exec(src, {"c": c})
        (c * lib.arange(6.0).reshape(c.shape)).sum().backward()
        seen.append((type(c.grad_fn).__name__, tuple(c.shape), c.stride(), x.grad.tolist()))
    assert seen[0] == seen[1]


@pytest.mark.parametrize("make", ["c[0]", "c.diagonal()", "c.t()", "c.view(6)",
                                  "c.expand(2, 2, 3)"])
def test_a_no_grad_view_whose_base_changed_is_refused_with_grad(make):
    """PyTorch's view made under no_grad requires grad with no history; once its base
    changed in place (in either mode) it is refused as an operand with grad enabled."""
    seen = []
    for lib in (torch, rg):
        for change_grad in (False, True):
            for use_grad in (False, True):
                x = lib.arange(6.0).reshape(2, 3).requires_grad_()
                c = x * 1
                with lib.no_grad():
                    d = eval(make, {"c": c})
                with lib.set_grad_enabled(change_grad):
                    c.add_(1)
                try:
                    with lib.set_grad_enabled(use_grad):
                        y = d * 2
                    seen.append((y.requires_grad, d.requires_grad, d.tolist()))
                except RuntimeError as e:
                    seen.append(str(e))
    assert seen[:4] == seen[4:]
