"""Never trust the wire: for every op, odd attribute values and odd input shapes give an
OpError from graph building (or a valid node), never another exception."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import catalog
from remotegrad.proto.catalog import OpError
from remotegrad.proto.nodes import WireNode
from remotegrad.worker.engine import build

from .helpers import make_value

ODD = [-7, -1, 0, 1, 10**9, (), (0,), (-1, -1), (2, 0), (1, 2, 3, 4, 5), "x", "", None, True,
       1.5, (1.5,), float("inf"), float("nan")]
OPS = sorted(n for n in catalog.CATALOG if n not in catalog.SOURCES)


def _wire(name, sample, attrs, shapes=None):
    rng = np.random.default_rng(0)
    nodes, ids = [], []
    for k, spec in enumerate(sample.inputs):
        v = make_value(spec, "float32", rng, False)
        if isinstance(v, (bool, int, float)):
            nodes.append(WireNode(k, "const", (), {"value": v}))
        else:
            shape = shapes[k] if shapes else tuple(np.shape(v))
            nodes.append(WireNode(k, "leaf", (), {"hash": f"h{k}", "dtype": v.dtype.name,
                                                  "shape": shape}))
        ids.append(k)
    nodes.append(WireNode(99, name, tuple(ids), attrs))
    return nodes


def _only_op_errors(nodes):
    try:
        build(nodes, [99])
    except OpError:
        pass


@pytest.mark.parametrize("name", OPS)
def test_odd_attributes_give_op_errors(name):
    op = catalog.get(name)
    sample = op.samples[0]
    for attr in op.attrs:
        for value in ODD:
            _only_op_errors(_wire(name, sample, {**sample.attrs, attr: value}))
    _only_op_errors(_wire(name, sample, {**sample.attrs, "bogus": 1}))


@pytest.mark.parametrize("name", OPS)
def test_odd_input_shapes_give_op_errors(name):
    sample = catalog.get(name).samples[0]
    n = len(sample.inputs)
    for shape in [(), (0,), (1,), (7,), (2, 3, 4, 5, 6), (0, 0, 0, 0)]:
        for k in range(n):
            shapes = [tuple(np.shape(make_value(s, "float32", np.random.default_rng(0), False)))
                      for s in sample.inputs]
            shapes[k] = shape
            _only_op_errors(_wire(name, sample, dict(sample.attrs), shapes))
