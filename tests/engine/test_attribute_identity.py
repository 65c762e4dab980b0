"""Every key that names a graph's structure tells apart every attribute value the graph's
meaning depends on: 0.0 from -0.0 (1/x differs) and NaN from any number, while a NaN
attribute still finds its own cached program again (proto/catalog/_identity.py). Checked
for every float attribute of the catalog through the cached path a worker takes
(engine.execute), against a fresh compile of the same graph."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import catalog
from remotegrad.proto.nodes import WireNode
from remotegrad.proto.provenance import fingerprint
from remotegrad.worker import engine
from remotegrad.worker.estimate import estimate

from .helpers import make_value

FLOAT_KINDS = {"float", "optional_float", "scalar", "optional_scalar"}
NAN = float("nan")


def _float_attrs():
    for name in sorted(catalog.CATALOG):
        op = catalog.get(name)
        for attr, (kind, _) in op.attrs.items():
            if kind in FLOAT_KINDS and (op.samples or name in ("full", "const")):
                yield name, attr


FLOAT_ATTRS = list(_float_attrs())


def _wire(name, attr, value):
    """The op on its first sample's inputs (leaves) with `attr` set, and 1/out on top so
    that the sign of a zero shows in the value."""
    op = catalog.get(name)
    sample = op.samples[0] if op.samples else None
    rng = np.random.default_rng(0)
    nodes, arrays = [], {}
    attrs = dict(sample.attrs) if sample else {}
    if name == "full":
        attrs.update(shape=(3,), dtype="float64")
    for spec in (sample.inputs if sample else ()):
        v = make_value(spec, "float64", rng, False)
        if isinstance(v, (bool, int, float)):
            nodes.append(WireNode(len(nodes), "const", (), {"value": v}))
            continue
        h = f"h{len(arrays)}"
        arrays[h] = np.asarray(v)
        nodes.append(WireNode(len(nodes), "leaf", (), {"hash": h, "dtype": arrays[h].dtype.name,
                                                       "shape": arrays[h].shape}))
    attrs[attr] = value
    nodes.append(WireNode(len(nodes), name, tuple(range(len(nodes))), attrs))
    out = len(nodes) - 1
    nodes.append(WireNode(len(nodes), "const", (), {"value": 1.0}))
    nodes.append(WireNode(len(nodes), "div", (len(nodes) - 1, out), {"rounding_mode": None}))
    return nodes, [out, len(nodes) - 1], arrays


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return np.array_equal(a, b)
    return np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))


def _fresh(nodes, targets, arrays):
    g, t = engine.build(nodes, targets)
    prog = engine.compile_graph(g, t, np)
    return prog.run([arrays[h] for h in prog.leaf_hashes])


@pytest.mark.parametrize("name,attr", FLOAT_ATTRS, ids=[f"{n}.{a}" for n, a in FLOAT_ATTRS])
def test_cached_programs_tell_float_attributes_apart(name, attr):
    """-0.0, then 0.0, then NaN (twice) through the cached path: each gives what a fresh
    compile of its own graph gives."""
    ran = 0
    for value in (-0.0, 0.0, NAN, NAN, -0.0):
        nodes, targets, arrays = _wire(name, attr, value)
        try:
            want = _fresh(nodes, targets, arrays)
        except (catalog.OpError, ArithmeticError, ValueError):
            continue  # not a valid value for this attribute (the wire check says so)
        got = engine.execute(nodes, targets, arrays.__getitem__, np)
        for g, w in zip(got, want):
            assert _same(g, w), f"{name}({attr}={value!r}): cached {g!r}, fresh {w!r}"
        ran += 1
    if not ran:
        pytest.skip(f"{name}.{attr} takes none of -0.0, 0.0, nan")


def test_signed_zeros_are_different_nodes_and_keys():
    g = engine.Graph()
    a = g.add("full", (), {"shape": (2,), "value": -0.0, "dtype": "float32"})
    b = g.add("full", (), {"shape": (2,), "value": 0.0, "dtype": "float32"})
    assert a != b, "CSE merged full(-0.0) and full(0.0)"
    n1 = g.add("full", (), {"shape": (2,), "value": NAN, "dtype": "float32"})
    n2 = g.add("full", (), {"shape": (2,), "value": float("nan"), "dtype": "float32"})
    assert n1 == n2, "two NaN attributes are the same value: one node"

    def graph(v):
        return [WireNode(0, "leaf", (), {"hash": "a" * 32, "dtype": "float32", "shape": (3,)}),
                WireNode(1, "const", (), {"value": v}),
                WireNode(2, "mul", (0, 1), {})], [2]
    assert fingerprint(*graph(-0.0)) != fingerprint(*graph(0.0))
    assert fingerprint(*graph(NAN)) == fingerprint(*graph(float("nan")))
    assert fingerprint(*graph(NAN)) != fingerprint(*graph(0.0))
    assert fingerprint(*graph(2)) != fingerprint(*graph(2.0))  # int64 const vs float64


def test_plan_keys_tell_signed_zeros_apart_and_find_nans():
    """One structure key for the engine's programs and the estimates (one plan each)."""
    engine.plans.clear()

    def graph(v):
        return [WireNode(0, "full", (), {"shape": (4,), "value": v, "dtype": "float32"})], [0]
    estimate(*graph(-0.0))
    estimate(*graph(0.0))
    assert len(engine.plans) == 2, "-0.0 and 0.0 are two structures"
    estimate(*graph(NAN))
    estimate(*graph(float("nan")))  # another NaN object: the same structure
    assert len(engine.plans) == 3, "-0.0, 0.0 and one NaN: three structures"
    engine.execute(*graph(0.0), {}.__getitem__, np)
    assert len(engine.plans) == 3, "the program is the same plan's"
