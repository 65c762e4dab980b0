"""Fusion of elementwise runs (worker/engine/fusion.py): which steps group, and that a
fused program computes what the unfused one does. numpy cannot fuse, so there a group
runs as its composed function (which checks the grouping and the fusable forms); on cupy
each group is one compiled kernel."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import catalog
from remotegrad.worker.engine import fusion

from . import helpers
from .graphs import chain_graph
from .helpers import EngineGraph, make_value

pytestmark = pytest.mark.usefixtures("backend")  # numpy, and cupy where a GPU is

def test_a_chain_and_its_gradient_fuse_into_one_kernel():
    eg, _, v, grad = chain_graph()
    plain = eg.compile([v, grad], fuse=False).run()
    eg.compile([v, grad], fuse=True)
    checked, fused = eg.run(), eg.run()   # the checked first run, then the fused code
    prog = eg.prog
    assert len(prog.groups) == 1, prog.groups
    (group,) = prog.groups.values()
    assert group.end - group.start == len(prog.steps) >= 200  # every step, one kernel
    assert len(group.outputs) == 2                             # v and the gradient only
    for a, b, c in zip(plain, checked, fused):
        # a fused kernel may contract a*b+c into one rounding (FMA): not bit-equal
        np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(b, a)
    if helpers.XP is not np:
        assert group.call.fused is True, "cupy.fuse refused the group: it ran unfused"


def test_a_group_returns_only_what_is_needed_after_it():
    eg = EngineGraph()
    x = eg.leaf(np.linspace(-1, 1, 12).reshape(3, 4))
    a = eg.g.add("exp", (x,))
    b = eg.g.add("tanh", (a,))                                   # read by sum, later
    c = eg.g.add("mul", (b, eg.g.add("const", (), {"value": 2.0})))  # a target
    d = eg.g.add("sum", (b,), {"dim": 1})
    eg.compile([c, d], fuse=True)
    eg.run()
    got_c, got_d = eg.run()
    (group,) = eg.prog.groups.values()
    assert len(group.outputs) == 2 and len(group.inputs) == 2    # b, c; x and the 2.0
    ref = np.tanh(np.exp(np.linspace(-1, 1, 12).reshape(3, 4)))
    np.testing.assert_allclose(got_c, 2 * ref)
    np.testing.assert_allclose(got_d, ref.sum(1))


def test_runs_break_at_other_ops_and_other_shapes():
    calls = {0: np.exp, 1: np.tanh, 3: np.sin, 4: np.cos, 5: np.exp, 6: np.exp}
    meta = catalog.Meta
    metas = {10: meta((3,), "float64"), 11: meta((3,), "float64"), 12: meta((), "float64"),
             13: meta((3,), "float64"), 14: meta((3,), "float64"), 15: meta((2, 3), "float64"),
             16: meta((2, 3), "float64")}
    steps = [(None, (), 10 + p, ()) for p in range(7)]
    # 2 is not fusible; 5 has another shape than 3 and 4 and starts a run with 6.
    assert fusion.runs(steps, calls, metas) == [(0, 2), (3, 5), (5, 7)]


@pytest.mark.parametrize("kernel", ["raises", "wrong dtype"])
def test_a_kernel_that_fails_its_first_call_leaves_the_group_unfused(kernel):
    plain = np.exp
    bad = {"raises": lambda a: 1 / 0, "wrong dtype": lambda a: np.exp(a).astype(np.float32)}
    call = fusion._Checked(bad[kernel], plain, [catalog.Meta((3,), "float64")], np)
    x = np.arange(3.0)
    for _ in range(2):
        np.testing.assert_array_equal(call(x), np.exp(x))
    assert call.fused is False


FUSABLE = [(name, k) for name in sorted(catalog.CATALOG) if catalog.get(name).fusable
           for k in range(len(catalog.get(name).samples))]


@pytest.mark.parametrize("name,index", FUSABLE, ids=[f"{n}-{k}" for n, k in FUSABLE])
def test_fusable_form_computes_the_forward(name, index):
    """The form fusion compiles is the op's forward, value for value."""
    op = catalog.get(name)
    sample = op.samples[index]
    rng = np.random.default_rng(index)
    xp = helpers.XP
    inputs = [helpers.to_device(xp, np.asarray(make_value(s, "float64", rng, False)))
              for s in sample.inputs]
    attrs = op.check_attrs(sample.attrs)
    want = op.forward(xp, *inputs, **attrs)
    got = op.fusable(xp, *inputs, **attrs)
    np.testing.assert_allclose(helpers.to_host(got), helpers.to_host(want), rtol=1e-12)
