"""The load-test workloads build valid requests that the engine runs, reuse leaves by hash
as the SDK does, and (the MLP) compute what PyTorch computes."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.loadtest import workloads as wl
from remotegrad.proto import codec
from remotegrad.worker.compute import MemoryTensorStore, compute


def _run(w: wl.Workload, store: MemoryTensorStore, n: int = 2):
    out = []
    for _ in range(n):
        req = w.next_request()
        out.append((req, codec.decode_response(compute(req, store))))
        w.sent_ok(req)
    return out


@pytest.mark.parametrize("name, options", [
    ("seed", {}), ("repeat", {"pool": 2}), ("upload", {"mib": 0.01}),
    ("chain", {"ops": 5, "numel": 7, "hit_ratio": 0.5}),
])
def test_each_workload_runs_on_the_engine(name, options):
    w = wl.make_workload(name, seed=3, **options)
    for req, results in _run(w, MemoryTensorStore(), 3):
        assert len(results) == len(req.targets)
        assert all(np.all(np.isfinite(r)) for r in results)


def test_seed_gradient_is_the_tutorials():
    b = wl.GraphBuilder()
    _, g = wl.seed_graph(b, np.ones((3, 3), np.float32))
    (grad,) = codec.decode_response(compute(b.request([g]), MemoryTensorStore()))
    np.testing.assert_array_equal(grad, np.full((3, 3), 24, np.float32))


def test_fresh_inputs_never_repeat_and_repeats_do():
    seed = wl.SeedWorkload(seed=1)
    assert seed.next_request().tensors[0].hash != seed.next_request().tensors[0].hash
    rep = wl.RepeatWorkload(pool=2)
    first = [rep.next_request() for _ in range(2)]
    for r in first:
        rep.sent_ok(r)
    again = rep.next_request()
    assert not again.tensors  # by hash only
    assert again.graph.nodes[0].attrs["hash"].s == first[0].tensors[0].hash
    rep.mark_lost()
    assert rep.next_request().tensors  # inline again once the cluster lost them


def test_mlp_sizes():
    assert wl.mlp_hidden_for_mib(1.0) in range(240, 260)
    for mib in (1, 4, 16):
        w = wl.MlpWorkload(param_mib=mib)
        assert abs(w.param_bytes / 2**20 - mib) / mib < 0.02


@pytest.mark.skipif(bool(wl.missing_ops(*wl.MLP_OPS)), reason="catalog lacks MLP ops")
def test_mlp_parameters_travel_once_and_gradients_match_torch():
    torch = pytest.importorskip("torch")
    w = wl.MlpWorkload(hidden=16, batch=5)
    store = MemoryTensorStore()
    (first, _), (second, _) = _run(w, store, 2)
    assert len(first.tensors) == 8 and len(second.tensors) == 2  # params once, batch always
    x, y = w.batch_arrays()
    b = wl.GraphBuilder()
    loss, grads = wl.mlp_graph(b, w.params, x, y)
    got = codec.decode_response(compute(b.request([loss, *grads]), store))
    p = [torch.tensor(a, requires_grad=True) for a in w.params]
    f = torch.nn.functional
    h = torch.tanh(f.linear(torch.tensor(x), p[0], p[1]))
    h = torch.tanh(f.linear(h, p[2], p[3]))
    ref = f.cross_entropy(f.linear(h, p[4], p[5]), torch.tensor(y))
    ref.backward()
    np.testing.assert_allclose(got[0], ref.detach().numpy(), rtol=1e-5)
    for i, (a, t) in enumerate(zip(got[1:], p)):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=f"gradient of parameter {i}")


def test_fresh_inputs_are_salted_per_instance():
    a, b = wl.SeedWorkload(seed=1), wl.SeedWorkload(seed=1)
    assert a.next_request().tensors[0].hash != b.next_request().tensors[0].hash
    c, d = wl.SeedWorkload(seed=1, salt=7), wl.SeedWorkload(seed=1, salt=7)
    assert c.next_request().tensors[0].hash == d.next_request().tensors[0].hash
    # what is meant to repeat does not depend on the salt
    assert wl.RepeatWorkload(seed=1).next_request().tensors[0].hash == \
        wl.RepeatWorkload(seed=2).next_request().tensors[0].hash
