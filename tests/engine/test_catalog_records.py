"""Every catalog record has what the engine needs, so that an op is one define(): a shape
rule; a forward or a decomposition (sources and the grad node aside); one derivative rule
per input, or a variadic rule, or none at all (NON_DIFFERENTIABLE); a ufunc numpy has;
attribute kinds the wire checks, with defaults of their kind. (The client's side is
tests/client/test_op_table.py; the values are tests/engine/test_ops.py's.)"""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import catalog
from remotegrad.proto.catalog._registry import ATTR_KINDS, _valid

OPS = sorted(catalog.CATALOG)


@pytest.mark.parametrize("name", OPS)
def test_record_is_complete(name):
    op = catalog.get(name)
    assert callable(op.infer)
    if name not in ("leaf", "grad"):
        assert op.forward is not None or op.decompose is not None, "nothing computes it"
    if op.vjp is not None:
        assert op.nin >= 0 and len(op.vjp) == op.nin, "one rule per input"
    if op.nin < 0 and op.differentiable and op.decompose is None:
        assert op.variadic_rule is not None, "a variadic op's rule takes the input index"
    if op.fusable is not None:
        assert op.forward is not None
    for attr, (kind, default) in op.attrs.items():
        assert kind in ATTR_KINDS, (attr, kind)
        assert default is catalog.REQUIRED or default is None or _valid(kind, default), \
            (attr, kind, default)


@pytest.mark.parametrize("name", [n for n in OPS if catalog.get(n).ufunc])
def test_a_ufunc_op_names_a_numpy_ufunc(name):
    op = catalog.get(name)
    assert isinstance(getattr(np, op.ufunc), np.ufunc), op.ufunc
    assert op.forward is not None


def test_define_derives_the_forward_and_refuses_what_it_cannot():
    from remotegrad.proto.catalog import define
    from remotegrad.proto.catalog.mathfn import infer_float_unary

    op = define("exp_derived", infer=infer_float_unary, ufunc="exp")
    try:
        np.testing.assert_array_equal(op.forward(np, np.array([0.0, 1.0])), np.exp([0.0, 1.0]))
        with pytest.raises(ValueError, match="registered twice"):
            define("exp_derived", infer=infer_float_unary, ufunc="exp")
    finally:
        del catalog.CATALOG["exp_derived"]
    with pytest.raises(ValueError, match="writes its forward"):
        define("exp_attrs", infer=infer_float_unary, ufunc="exp", attrs={"k": ("int", 1)})
    with pytest.raises(ValueError, match="one per input"):
        define("two_in", nin=2, infer=infer_float_unary, ufunc="add", vjp=lambda g, x, y, o: g)
    with pytest.raises(TypeError):
        define("positional", infer_float_unary)  # keyword-only: a positional fact is refused
    assert not {"exp_attrs", "two_in", "positional"} & set(catalog.CATALOG)


def test_the_shared_catalog_holds_no_cuda_source():
    """The catalog is shared with the client: device kernels are the worker's
    (worker/engine/kernels.py registers them into _special.DEVICE)."""
    from pathlib import Path

    from remotegrad.proto.catalog import _special
    from remotegrad.worker.engine import kernels  # noqa: F401  (registers them)

    for path in Path(catalog.__file__).parent.glob("*.py"):
        assert "__global__" not in path.read_text(), path.name
    assert {"softmax_rows", "ce_rows"} <= set(_special.DEVICE)


@pytest.mark.parametrize("name", [n for n in OPS if catalog.get(n).float_inputs])
def test_float_inputs_means_an_integer_input_gives_a_float(name):
    """float_inputs: the engine casts integer inputs to the default float before the
    forward, so the shape rule must accept an integer input and give a float (a topic
    default such as mathfn's _unary set on an op whose own rule refuses integers fails)."""
    op = catalog.get(name)
    sample = op.samples[0]
    metas = [catalog.Meta(s.shape, "int64") for s in sample.inputs]
    meta, _ = op.check(metas, sample.attrs)
    assert meta.dtype in catalog.FLOATING, meta


# The ops with no batching rule, and why (vmap maps them per slice; each NoRule says so).
UNBATCHED = {
    "overwrite": "in-place bookkeeping",
    "replace": "in-place bookkeeping",
}


def test_every_op_has_a_batching_rule_or_says_why_not():
    """OpDef.batch is declared for every op: a rule (proto/catalog/_batching.py), SOURCE for
    an op without inputs, or NoRule(why) for the ops listed above, and only those."""
    from remotegrad.proto.catalog._batching import SOURCE, NoRule
    undeclared = [n for n in OPS if catalog.get(n).batch is None]
    assert not undeclared, f"no batch= in their define: {undeclared}"
    sources = {n for n in OPS if catalog.get(n).batch is SOURCE}
    assert sources == {n for n in OPS if catalog.get(n).nin == 0}, sources
    none = {n: catalog.get(n).batch for n in OPS
            if isinstance(catalog.get(n).batch, NoRule) and n not in sources}
    assert set(none) == set(UNBATCHED), set(none) ^ set(UNBATCHED)
    for name, rule in none.items():
        assert rule.why.startswith(UNBATCHED[name]), (name, rule.why)


def _stacked_graph(nodes, per_client):
    """Graphs of one structure from several clients as ONE engine graph, by the catalog's
    rules alone (what a gateway would do: no client code): `nodes` are (op, input
    positions, attrs), the leaves first; per_client[k] the leaves' values of client k."""
    from remotegrad.proto.catalog._batching import Site
    from remotegrad.worker.engine import Graph

    from .helpers import EngineGraph
    one, eg = Graph(), EngineGraph()
    size = len(per_client)
    ids, bids = [], []
    for op, inputs, attrs in nodes:
        if op == "leaf":
            arrays = [values[len(ids)] for values in per_client]
            ids.append(one.add("leaf", (), {"hash": f"s{len(ids)}", "dtype": arrays[0].dtype.name,
                                              "shape": arrays[0].shape}))
            bids.append(_Id(eg.leaf(np.stack(arrays))))
            continue
        ids.append(one.add(op, [ids[i] for i in inputs], attrs))
        site = Site(op, dict(one.attrs[ids[-1]]), tuple(one.metas[ids[i]] for i in inputs),
                    (True,) * len(inputs), one.metas[ids[-1]])
        plan = catalog.get(op).batch(site)
        assert plan is not None, op

        def emit(o, *xs, **a):  # a Python number operand is a const node, as on the wire
            return _Id(eg.g.add(o, [x.id if isinstance(x, _Id) else eg.g.add(
                "const", (), {"value": x}) for x in xs], a))
        bids.append(plan(emit, [bids[i] for i in inputs], size) if callable(plan)
                    else emit(op, *[bids[i] for i in inputs], **plan))
    return eg, bids[-1].id


class _Id:
    """A node of the stacked graph, apart from the Python numbers a rewrite emits."""

    def __init__(self, id_: int) -> None:
        self.id = id_


def test_same_structure_graphs_batch_by_the_rules_alone():
    """Three clients' graphs (a small MLP's loss) stacked into one by the batching rules
    over the engine's own Graph, against each graph run alone."""
    from .helpers import EngineGraph
    nodes = [("leaf", (), {})] * 4 + [
        ("linear", (0, 1, 2), {}), ("tanh", (4,), {}), ("log_softmax", (5,), {"dim": -1}),
        ("cross_entropy", (4, 3), {}), ("sum", (6,), {"dim": 0}), ("mul", (8, 7), {})]
    rng = np.random.default_rng(0)
    clients = [[rng.standard_normal((5, 3)), rng.standard_normal((4, 3)),
                rng.standard_normal(4), rng.integers(0, 4, 5)] for _ in range(3)]
    eg, out = _stacked_graph(nodes, clients)
    got = eg.compile([out]).run()[0]
    for k, values in enumerate(clients):
        alone = EngineGraph()
        ids = []
        for op, inputs, attrs in nodes:
            ids.append(alone.leaf(values[len(ids)]) if op == "leaf"
                       else alone.g.add(op, [ids[i] for i in inputs], attrs))
        np.testing.assert_allclose(got[k], alone.compile([ids[-1]]).run()[0], rtol=1e-12)
