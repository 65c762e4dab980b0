"""Every op's batching rule (OpDef.batch) against mapping the op slice by slice.

For each op and each of its catalog samples, B slices of different random inputs: vmap of
the op alone (batched inputs: all of them, the first only, the last only) must give what
recording the op once per slice and stacking gives, and so must the per-sample gradient
of a random projection of it (vmap over grad). The rule must also answer, not fall back
per slice, for every op that has one where all inputs are batched (a NoRule op, or a case
a rule declines, is mapped per slice by vmap and checked the same way)."""

from __future__ import annotations

import numpy as np
import pytest

import remotegrad as rg
import remotegrad.func as rf
from remotegrad._tensor_base import apply
from remotegrad.func import _batching
from remotegrad.proto import catalog
from remotegrad.proto.catalog._batching import NoRule

B = 3
SKIP = {"grad"}  # structural: vmap reaches it through autograd.grad (tests in test_vmap.py)
OPS = sorted(n for n, o in catalog.CATALOG.items() if o.nin != 0 and n not in SKIP)


def _value(spec: catalog.In, rng: np.random.Generator):
    if spec.kind == "scalar":
        return spec.value
    if spec.kind == "fixed":
        return np.array(spec.value, np.float64)
    if spec.kind in ("value", "mask"):
        return np.array(spec.value)
    if spec.kind == "int":
        return rng.integers(int(spec.low), int(spec.high), spec.shape).astype(np.int64)
    if spec.kind == "bool":
        return rng.random(spec.shape) < 0.5
    return rng.uniform(spec.low, spec.high, spec.shape).astype(np.float64)


def _slices(sample: catalog.Sample, seed: int) -> list[list]:
    rng = np.random.default_rng(seed)
    return [[_value(s, rng) for s in sample.inputs] for _ in range(B)]


def _stacked(per: list[list], i: int):
    return rg.tensor(np.stack([p[i] for p in per]))


def _cases():
    for name in OPS:
        for k, sample in enumerate(catalog.get(name).samples):
            tensors = [i for i, s in enumerate(sample.inputs) if s.kind != "scalar"]
            if not tensors:
                continue
            forms = {"all": tuple(tensors), "first": tensors[:1], "last": tensors[-1:]}
            for form, batched in forms.items():
                if form != "all" and len(tensors) == 1:
                    continue
                yield pytest.param(name, k, tuple(batched), id=f"{name}-{k}-{form}")


def _read(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _run(name, sample, per, batched):
    """(vmap's result, the per-slice stack, how many ops vmap mapped per slice)."""
    attrs = sample.attrs
    n = len(sample.inputs)
    args = [_stacked(per, i) if i in batched else
            (rg.tensor(per[0][i]) if isinstance(per[0][i], np.ndarray) else per[0][i])
            for i in range(n)]
    in_dims = tuple(0 if i in batched else None for i in range(n))
    before = sum(v for k, v in _batching.STATS.items() if k.startswith("op_per_slice:"))
    got = rf.vmap(lambda *xs: apply(name, *xs, **attrs), in_dims=in_dims)(*args)
    fell = sum(v for k, v in _batching.STATS.items() if k.startswith("op_per_slice:")) - before
    rows = []
    for b in range(B):
        xs = [rg.tensor(per[b][i]) if i in batched else a for i, a in enumerate(args)]
        rows.append(apply(name, *xs, **attrs))
    return got, rows, fell


def _close(got, want, what):
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape,
                                                                 got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True,
                               err_msg=what)


def _raises(fn):
    try:
        fn()
    except (RuntimeError, ValueError, IndexError, TypeError):
        return True
    return False


@pytest.mark.parametrize("name,k,batched", list(_cases()))
def test_rule_matches_per_slice(name, k, batched):
    sample = catalog.get(name).samples[k]
    per = _slices(sample, seed=k + 1)
    try:
        got, rows, fell = _run(name, sample, per, batched)
        want = np.stack([_read(r) for r in rows])
    except (RuntimeError, ValueError, IndexError) as e:
        # A sample that the op refuses for its values (check_targets...) refuses batched too.
        pytest.skip(f"the op refuses these slices: {e}")
    _close(_read(got), want, f"{name} sample {k}, batched inputs {batched}")
    rule = catalog.get(name).batch
    if len(batched) == sum(s.kind != "scalar" for s in sample.inputs) and \
            not isinstance(rule, NoRule) and fell:
        site = _site(name, sample, per, batched)
        assert rule(site) is None, f"{name}: the rule answered but vmap mapped it per slice"


def _site(name, sample, per, batched):
    from remotegrad.proto.catalog._batching import Site
    metas = tuple(catalog.Meta(np.shape(v), np.asarray(v).dtype.name)
                  if isinstance(v, np.ndarray) else catalog.scalar_meta(v) for v in per[0])
    meta, full = catalog.get(name).check(list(metas), dict(sample.attrs))
    return Site(name, full, metas, tuple(i in batched for i in range(len(metas))), meta)


def test_every_rule_batches_some_sample():
    """An op with a rule answers for at least one of its samples, with every input batched
    or the first only (conv2d's weight, embedding's table, index_select's indices map per
    slice): a rule that always declines is a NoRule in disguise."""
    silent = []
    for name in OPS:
        op = catalog.get(name)
        if isinstance(op.batch, NoRule):
            continue
        answered = False
        for k, sample in enumerate(op.samples):
            per = _slices(sample, seed=k + 1)
            tensors = tuple(i for i, s in enumerate(sample.inputs) if s.kind != "scalar")
            for batched in (tensors, tensors[:1]) if tensors else ():
                try:
                    answered = op.batch(_site(name, sample, per, batched)) is not None
                except catalog.OpError:
                    continue
                if answered:
                    break
            if answered:
                break
        if not answered:
            silent.append(name)
    assert not silent, f"rules that declined every sample: {silent}"


GRAD_OPS = [n for n in OPS if catalog.get(n).differentiable and n not in
            catalog.NON_DIFFERENTIABLE]


@pytest.mark.parametrize("name", GRAD_OPS)
def test_per_sample_gradient_matches_per_slice(name):
    """vmap(grad(<op's result · a fixed projection>.sum())) over the op's first sample with
    float inputs, against each slice's own gradient."""
    op = catalog.get(name)
    for k, sample in enumerate(op.samples):
        wrt = [i for i, s in enumerate(sample.inputs) if s.kind in ("float", "fixed")]
        if sample.grad is not None:
            wrt = [i for i in wrt if i in sample.grad]
        if not wrt or not sample.fd:
            continue
        per = _slices(sample, seed=k + 7)
        w = wrt[0]
        others = [i for i in range(len(sample.inputs)) if i != w]

        def f(x, *rest, w=w, attrs=sample.attrs):
            xs = list(rest)
            xs.insert(w, x)
            out = apply(name, *xs, **attrs)
            proj = rg.tensor(np.linspace(-1.0, 1.0, max(out.numel(), 1))[:out.numel()]
                             .reshape(tuple(out.shape)))
            return (out * proj).sum()

        stacked = [_stacked(per, i) if isinstance(per[0][i], np.ndarray) else per[0][i]
                   for i in range(len(sample.inputs))]
        in_dims = tuple(0 if isinstance(per[0][i], np.ndarray) else None for i in others)
        try:
            got = rf.vmap(rf.grad(f), in_dims=(0,) + in_dims)(
                stacked[w], *[stacked[i] for i in others])
            want = np.stack([_read(rf.grad(f)(rg.tensor(per[b][w]),
                                              *[rg.tensor(per[b][i]) if isinstance(
                                                  per[b][i], np.ndarray) else per[b][i]
                                                for i in others])) for b in range(B)])
        except (RuntimeError, ValueError, IndexError):
            continue
        _close(_read(got), want, f"{name} sample {k}: d/d input {w}")
        return
    pytest.skip(f"{name}: no sample with a float input to differentiate")
