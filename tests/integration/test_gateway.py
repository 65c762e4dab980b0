"""The gateway against real workers and Redis: results cached under the graph's
fingerprint (a repeat never reaches a worker), bad graphs refused with the reason."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from remotegrad.proto import codec
from remotegrad.proto.codec import WireNode
from remotegrad.proto.keys import result_pattern


def _request(x: np.ndarray, scale: float, inline: bool = True, first_id: int = 0):
    h = codec.array_hash(x)
    a, b, m, s = (first_id + i for i in range(4))
    nodes = [WireNode(a, "leaf", (), {"hash": h, "dtype": "float32", "shape": x.shape}),
             WireNode(b, "const", (), {"value": scale}),
             WireNode(m, "mul", (a, b), {}),
             WireNode(s, "sum", (m,), {"dim": None, "keepdim": False})]
    tensors = [codec.encode_array(x, h)] if inline else []
    return codec.encode_request(nodes, tensors, [s, m])


def test_same_computation_twice_reaches_a_worker_once(cluster):
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    stub = cluster.stub()
    before = cluster.status()
    first = stub.Compute(_request(x, 2.5), timeout=10)
    assert not first.cache_hit and first.worker
    # Renumbered nodes and the leaf by hash only: still the same computation.
    second = stub.Compute(_request(x, 2.5, inline=False, first_id=100), timeout=10)
    assert second.cache_hit and second.worker == ""
    after = cluster.status()
    assert after.cache_hits - before.cache_hits == 1
    assert after.cache_misses - before.cache_misses == 1
    total, scaled = codec.decode_response(second)
    np.testing.assert_allclose(scaled, x * np.float32(2.5), rtol=1e-6)
    np.testing.assert_allclose(total, (x * np.float32(2.5)).sum(), rtol=1e-5)
    assert [a.tobytes() for a in codec.decode_response(first)] == \
        [a.tobytes() for a in codec.decode_response(second)]


def test_results_are_cached_in_redis(cluster):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    cluster.stub().Compute(_request(x, 7.0), timeout=10)
    from remotegrad.proto.keys import result_pattern
    keys = cluster.redis.client().keys(result_pattern("default"))
    assert keys, "no result key in Redis"


def test_unknown_leaf_hash_is_failed_precondition(cluster):
    x = np.full((2, 2), 3.25, dtype=np.float32)
    with pytest.raises(grpc.RpcError) as e:
        cluster.stub().Compute(_request(x, 1.5, inline=False), timeout=10)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert codec.array_hash(x) in e.value.details()


@pytest.mark.parametrize("mutate, reason", [
    (lambda r: setattr(r.graph.nodes[2], "op", "frobnicate"), "unknown op 'frobnicate'"),
    (lambda r: r.graph.nodes[2].inputs.append(0), "expected 2 input(s), got 3"),
    (lambda r: r.graph.nodes[2].inputs.__setitem__(0, 3), "not defined before it"),
    (lambda r: r.targets.append(42), "target(s) [42]"),
    (lambda r: setattr(r.tensors[0], "data", b"short"), "need 60 bytes, got 5"),
])
def test_bad_graphs_are_refused_with_the_reason(cluster, mutate, reason):
    x = np.ones((5, 3), dtype=np.float32)
    req = _request(x, 1.0)
    mutate(req)
    with pytest.raises(grpc.RpcError) as e:
        cluster.stub().Compute(req, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in e.value.details()
    assert cluster.stub().Compute(_request(x, 4.0), timeout=10).results  # still serving


def test_health_and_reflection(cluster):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    with grpc.insecure_channel(cluster.address) as ch:
        h = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="remotegrad.v1.Gateway"), timeout=5)
        assert h.status == health_pb2.HealthCheckResponse.SERVING
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        resp = next(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([req]), timeout=5))
        names = {s.name for s in resp.list_services_response.service}
        assert {"remotegrad.v1.Gateway", "grpc.health.v1.Health"} <= names


def test_small_graphs_run_in_the_gateway_when_enabled():
    from procs import start_cluster, start_redis, stop
    redis = start_redis()
    cluster = start_cluster(redis, 1, "--local-max-nodes", "16")
    try:
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        resp = cluster.stub().Compute(_request(x, 2.0), timeout=10)
        assert resp.worker == "gateway" and not resp.cache_hit
        total, scaled = codec.decode_response(resp)
        np.testing.assert_array_equal(scaled, x * 2)
        assert float(total) == 30.0
        assert redis.client().keys(result_pattern()) == []  # no worker, no result cache
        big = np.ones((200, 200), dtype=np.float32)  # 160 KB of leaves: over the bound
        resp = cluster.stub().Compute(_request(big, 2.0), timeout=10)
        assert resp.worker not in ("", "gateway")
        assert cluster.metric("remotegrad_local_calls_total") == 1
    finally:
        cluster.close()
        stop(redis.proc)
