"""The engine's contracts: deep graphs, pruning, sharing, freeing, several roots, grads of
non-leaves, zeros for unused inputs, the compiled-program cache, and the wire path."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from remotegrad.proto.catalog import OpError
from remotegrad.proto.nodes import WireNode, array_hash
from remotegrad.worker import engine
from remotegrad.worker.engine import Graph, compile_graph
from remotegrad.worker.engine.executor import Program

from .helpers import EngineGraph

pytestmark = pytest.mark.usefixtures("backend")  # numpy, and cupy where a GPU is


def _run(eg: EngineGraph, targets):
    return eg.compile(targets).run()


def test_chain_of_100k_nodes_runs_forward_and_backward():
    eg = EngineGraph()
    x = eg.leaf(np.array([1.0, 2.0]))
    y = x
    for _ in range(100_000):
        y = eg.g.add("mul", (y, eg.g.add("const", (), {"value": 1.0})))
    s = eg.g.add("sum", (y,))
    one = eg.g.add("full", (), {"shape": (), "value": 1.0, "dtype": "float64"})
    gx = eg.g.add("grad", (s, one, x), {"n": 1})
    out, grad = _run(eg, [s, gx])
    assert out == 3.0
    np.testing.assert_array_equal(grad, [1.0, 1.0])


def test_only_what_targets_need_is_computed():
    eg = EngineGraph()
    x = eg.leaf(np.array([1.0, 2.0]))
    mask = eg.leaf(np.array([True, False]))
    # A node that would fail if it ran: its mask count is wrong.
    eg.g.add("index", (x, mask), {"key": "T", "mask_counts": (2,)})
    y = eg.g.add("exp", (x,))
    (out,) = _run(eg, [y])
    np.testing.assert_allclose(out, np.exp([1.0, 2.0]))
    assert [op for op in (eg.g.ops[n] for n in eg.g.needed([y]))] == ["leaf", "exp"]


def test_identical_subexpressions_are_one_node():
    g = Graph()
    x = g.add("leaf", (), {"hash": "a", "dtype": "float32", "shape": (3,)})
    a, b = g.add("exp", (x,)), g.add("exp", (x,))
    assert a == b
    assert g.add("const", (), {"value": 2}) != g.add("const", (), {"value": 2.0})


def test_intermediates_are_freed_after_last_use():
    n, size = 50, 1 << 18          # 50 steps over 2 MiB arrays
    eg = EngineGraph()
    x = eg.leaf(np.ones(size))
    y = x
    for _ in range(n):
        y = eg.g.add("exp", (eg.g.add("neg", (y,)),))
    eg.compile([eg.g.add("sum", (y,))])
    tracemalloc.start()
    eg.run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * size * 8, f"peak {peak} bytes: intermediates are kept alive"


def test_several_roots_with_seeds_in_one_grad_node():
    xs = np.array([0.5, -1.0, 2.0])
    eg = EngineGraph()
    x = eg.leaf(xs)
    a, b = eg.g.add("sin", (x,)), eg.g.add("mul", (x, x))
    sa, sb = eg.leaf(np.array([1.0, 2.0, 3.0])), eg.leaf(np.array([-1.0, 0.5, 1.0]))
    gx = eg.g.add("grad", (a, b, sa, sb, x), {"n": 2})
    (got,) = _run(eg, [gx])
    t = torch.tensor(xs, requires_grad=True)
    torch.autograd.backward([t.sin(), t * t], [torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
                                               torch.tensor([-1.0, 0.5, 1.0], dtype=torch.float64)])
    np.testing.assert_allclose(got, t.grad.numpy())


def test_grad_of_a_non_leaf_and_zeros_for_unused_inputs():
    eg = EngineGraph()
    x, unused = eg.leaf(np.array([1.0, 2.0])), eg.leaf(np.array([5.0]))
    h = eg.g.add("mul", (x, eg.g.add("const", (), {"value": 3.0})))
    s = eg.g.add("sum", (eg.g.add("mul", (h, h)),))
    one = eg.g.add("full", (), {"shape": (), "value": 1.0, "dtype": "float64"})
    gh, gx, gu = (eg.g.add("grad", (s, one, w), {"n": 1}) for w in (h, x, unused))
    got_h, got_x, got_u = _run(eg, [gh, gx, gu])
    np.testing.assert_allclose(got_h, [6.0, 12.0])        # 2h
    np.testing.assert_allclose(got_x, [18.0, 36.0])       # 18x
    np.testing.assert_array_equal(got_u, [0.0])


def test_hessian_vector_product_and_third_order():
    xs = np.array([0.3, -0.7, 1.1])
    eg = EngineGraph()
    x = eg.leaf(xs)
    f = eg.g.add("sum", (eg.g.add("mul", (eg.g.add("exp", (x,)), eg.g.add("sin", (x,)))),))
    one = eg.g.add("full", (), {"shape": (), "value": 1.0, "dtype": "float64"})
    g1 = eg.g.add("grad", (f, one, x), {"n": 1})
    ones = eg.leaf(np.ones(3))
    g2 = eg.g.add("grad", (g1, ones, x), {"n": 1})
    g3 = eg.g.add("grad", (g2, ones, x), {"n": 1})
    d1, d2, d3 = _run(eg, [g1, g2, g3])
    e, s, c = np.exp(xs), np.sin(xs), np.cos(xs)
    np.testing.assert_allclose(d1, e * (s + c))
    np.testing.assert_allclose(d2, 2 * e * c)
    np.testing.assert_allclose(d3, 2 * e * (c - s))


def test_a_node_passed_twice_to_a_composite_gets_its_gradient_once():
    x, w = np.linspace(-1, 1, 10).reshape(2, 5), np.linspace(0.5, 1.5, 5)
    eg = EngineGraph()
    xi, wi = eg.leaf(x), eg.leaf(w)
    y = eg.g.add("layer_norm", (xi, wi, wi), {"normalized_shape": (5,)})
    s = eg.g.add("sum", (eg.g.add("mul", (y, y)),))
    one = eg.g.add("full", (), {"shape": (), "value": 1.0, "dtype": "float64"})
    gx, gw = eg.g.add("grad", (s, one, xi), {"n": 1}), eg.g.add("grad", (s, one, wi), {"n": 1})
    got_x, got_w = _run(eg, [gx, gw])
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    out = torch.nn.functional.layer_norm(tx, (5,), tw, tw)
    (out * out).sum().backward()
    np.testing.assert_allclose(got_x, tx.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(got_w, tw.grad.numpy())


def test_gradient_of_an_integer_tensor_is_refused():
    g = Graph()
    x = g.add("leaf", (), {"hash": "a", "dtype": "int64", "shape": (3,)})
    s = g.add("sum", (x,))
    with pytest.raises(OpError, match="floating point"):
        g.add("grad", (s, s, x), {"n": 1})


def test_shape_errors_use_pytorch_wording():
    g = Graph()
    a = g.add("leaf", (), {"hash": "a", "dtype": "float32", "shape": (3, 4)})
    b = g.add("leaf", (), {"hash": "b", "dtype": "float32", "shape": (5, 6)})
    with pytest.raises(OpError, match=r"The size of tensor a \(4\) must match the size of "
                                      r"tensor b \(6\) at non-singleton dimension 1"):
        g.add("add", (a, b))
    with pytest.raises(OpError, match=r"mat1 and mat2 shapes cannot be multiplied \(3x4 and 5x6\)"):
        g.add("matmul", (a, b))
    with pytest.raises(OpError, match=r"Dimension out of range \(expected to be in range of "
                                      r"\[-2, 1\], but got 2\)"):
        g.add("sum", (a,), {"dim": 2})


def _wire(a: np.ndarray, b: np.ndarray, scale):
    ha, hb = array_hash(a), array_hash(b)
    nodes = [WireNode(10, "leaf", (), {"hash": ha, "dtype": a.dtype.name, "shape": a.shape}),
             WireNode(11, "leaf", (), {"hash": hb, "dtype": b.dtype.name, "shape": b.shape}),
             WireNode(12, "const", (), {"value": scale}),
             WireNode(13, "matmul", (10, 11), {}),
             WireNode(14, "mul", (13, 12), {}),
             WireNode(15, "sum", (14,), {})]
    return nodes, {ha: a, hb: b}


def test_programs_are_cached_by_structure_not_data():
    engine.plans.clear()
    a, b = np.ones((2, 3), np.float32), np.full((3, 2), 2.0, np.float32)
    nodes, data = _wire(a, b, 2.0)
    (r1,) = engine.execute(nodes, [15], data.__getitem__, np)
    nodes2, data2 = _wire(a * 3, b, 2.0)
    (r2,) = engine.execute(nodes2, [15], data2.__getitem__, np)
    assert len(engine.plans) == 1
    assert (float(r1), float(r2)) == (48.0, 144.0)
    nodes3, data3 = _wire(a, b, 2)   # an int scalar is another structure (int64 const)
    engine.execute(nodes3, [15], data3.__getitem__, np)
    assert len(engine.plans) == 2
    # The same tensor twice is one leaf; two equal-shaped different tensors are two.
    nodes4, data4 = _wire(b.T.copy(), b, 2.0)
    (r4,) = engine.execute(nodes4, [15], data4.__getitem__, np)
    assert float(r4) == 2.0 * (b.T @ b).sum()


def test_equal_tensors_with_different_tags_get_their_own_gradients():
    w = np.ones(3)
    h = array_hash(w)
    leaf = {"hash": h, "dtype": "float64", "shape": (3,)}
    nodes = [WireNode(1, "leaf", (), {**leaf, "tag": "a"}),
             WireNode(2, "leaf", (), {**leaf, "tag": "b"}),
             WireNode(3, "const", (), {"value": 2.0}),
             WireNode(4, "mul", (1, 3), {}),
             WireNode(5, "mul", (4, 2), {}),     # 2 * a * b
             WireNode(6, "sum", (5,), {}),
             WireNode(7, "full", (), {"shape": (), "value": 1.0, "dtype": "float64"}),
             WireNode(8, "grad", (6, 7, 1), {"n": 1}),
             WireNode(9, "grad", (6, 7, 2), {"n": 1})]
    ga, gb = engine.execute(nodes, [8, 9], {h: w}.__getitem__, np)
    np.testing.assert_array_equal(ga, 2 * w)   # not 4w: a and b are two leaves
    np.testing.assert_array_equal(gb, 2 * w)
    untagged = [WireNode(n.id, n.op, n.inputs, {k: v for k, v in n.attrs.items()
                                                      if k != "tag"}) for n in nodes]
    ga, _ = engine.execute(untagged, [8, 9], {h: w}.__getitem__, np)
    np.testing.assert_array_equal(ga, 4 * w)   # one leaf: d(2 a^2)/da


def test_first_run_fixes_results_whose_dtype_the_array_module_gets_wrong():
    g = Graph()
    x = g.add("leaf", (), {"hash": "x", "dtype": "int64", "shape": (3,)})
    y = g.add("div", (x, g.add("const", (), {"value": 2})))   # int / int → float32
    prog = compile_graph(g, [y], np)
    assert isinstance(prog, Program)
    for _ in range(2):  # the checked first run, then the fast path
        (out,) = prog.run([np.array([1, 2, 3])])
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [0.5, 1.0, 1.5])


def test_elementwise_results_reuse_dying_buffers_without_aliasing():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    eg = EngineGraph()
    xi = eg.leaf(x)
    a = eg.g.add("exp", (xi,))                                   # fresh
    b = eg.g.add("tanh", (a,))                                   # may write into a
    t = eg.g.add("transpose", (b,), {"dim0": 0, "dim1": 1})      # a view of b
    c = eg.g.add("mul", (b, b))                                  # b has a live view: no
    d = eg.g.add("add", (c, eg.g.add("transpose", (t,), {"dim0": 0, "dim1": 1})))
    eg.compile([d, xi])
    into = {eg.g.ops[eg.prog.steps[p][2]]: slot for p, (_, slot) in eg.prog.direct.items()}
    assert into["tanh"] == a and into["mul"] is None
    for _ in range(3):                                           # checked run, then fast
        got, leaf = eg.run()
        b_ = np.tanh(np.exp(x))
        np.testing.assert_allclose(got, b_ * b_ + b_)
        np.testing.assert_array_equal(leaf, x)                   # leaves are never written


def test_a_malformed_graph_is_refused_even_when_a_valid_twin_is_planned():
    """The plan cache is keyed by structure: what the key leaves out of a leaf (its name)
    must not let a leaf with inputs or unknown attributes through on a valid twin's plan."""
    from remotegrad.proto.catalog import OpError

    def graph(bad=None):
        leaf = {"hash": "a" * 32, "dtype": "float32", "shape": (4, 3)}
        return [WireNode(0, "leaf", (6,) if bad == "input" else (),
                         {**leaf, "foo": 1} if bad == "attr" else leaf),
                WireNode(1, "leaf", (), {"hash": "b" * 32, "dtype": "float32", "shape": (3, 2)}),
                WireNode(2, "matmul", (0, 1), {}), WireNode(3, "tanh", (2,), {}),
                WireNode(4, "sum", (3,), {"dim": None, "keepdim": False}),
                WireNode(5, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
                WireNode(6, "grad", (4, 5, 0), {"n": 1})], [4, 6]
    engine.plan(*graph())
    with pytest.raises(OpError, match="not defined before it"):
        engine.plan(*graph("input"))
    with pytest.raises(OpError, match="unknown attribute"):
        engine.plan(*graph("attr"))
