"""Issue 17 item 4: remotegrad on a Redis Cluster of three masters.

A plain redis-py client on a cluster node fails with MovedError, and the old chunked
tensor's MGET over keys in different slots failed with CROSSSLOT. Here a real gateway and
worker run with `--redis-url redis+cluster://...` against three cluster-enabled
redis-servers joined by `redis-cli --cluster create`, and serve: large (chunked) tensors
uploaded by PutTensor and read by the worker, large results stored by reference and read
back, the result cache, the worker registry and the rate limiter's buckets. Values are
checked against PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from procs import start_cluster
from redis_modes import start_redis_cluster
from remotegrad.proto import codec, keys, registry
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.codec import WireNode
from remotegrad.proto.redis_client import connect
from remotegrad.proto.store import CHUNK

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def on_cluster(tmp_path_factory):
    redis = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        c = start_cluster(redis, 1, "--inline-result-bytes", str(1 << 20),
                          "--rate-limit", "10000")  # its bucket script on the cluster too
        try:
            yield redis, c
        finally:
            c.close()
    finally:
        redis.stop()


def _leaf(h: str, x: np.ndarray) -> WireNode:
    return WireNode(0, "leaf", (), {"hash": h, "dtype": x.dtype.name, "shape": x.shape})


def _by_reference(h: str, x: np.ndarray, op: str) -> pb.ComputeRequest:
    """`op` of the stored tensor `h` (no bytes sent): its sum, or twice it."""
    if op == "sum":
        second = WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})
        return codec.encode_request([_leaf(h, x), second], [], [1])
    two = np.array(2.0, np.float32)
    nodes = [_leaf(h, x), WireNode(1, "leaf", (), {"hash": codec.array_hash(two),
                                                   "dtype": "float32", "shape": ()}),
             WireNode(2, "mul", (0, 1), {})]
    return codec.encode_request(nodes, [codec.encode_array(two)], [2])


def _owner(redis, key: str) -> int:
    """The port of the master holding `key` (asked of the cluster, not computed here)."""
    slot = redis.node(redis.ports[0]).cluster("keyslot", key)
    for port in redis.ports:
        if redis.node(port).cluster("countkeysinslot", slot):
            return port
    raise AssertionError(f"{key} is on no node")


def test_chunked_tensors_and_large_results(on_cluster):
    redis, c = on_cluster
    stub = c.stub()
    x = np.random.default_rng(0).standard_normal(12_000_000).astype(np.float32)  # 46 MiB
    msg = codec.encode_array(x)
    assert len(msg.data) > CHUNK  # stored as chunks
    stub.PutTensor(iter(codec.to_chunks(msg)), timeout=60)
    present = stub.HasTensors(pb.HasTensorsRequest(hashes=[msg.hash, "0" * 32]), timeout=10)
    assert list(present.present) == [True, False]
    # The worker reads the whole tensor back from the cluster (one key, one slot).
    (total,) = codec.decode_response(stub.Compute(_by_reference(msg.hash, x, "sum"),
                                                  timeout=60))
    want = torch.from_numpy(x).sum().item()
    assert float(total) == pytest.approx(want, rel=1e-4, abs=1e-2)
    # A large result goes to the store by reference (written by its worker) ...
    resp = stub.Compute(_by_reference(msg.hash, x, "mul"), timeout=60)
    (doubled,) = resp.results
    assert doubled.hash and not doubled.data
    assert stub.HasTensors(pb.HasTensorsRequest(hashes=[doubled.hash]), timeout=10).present[0]
    # ... and read from it by the next graph.
    (total2,) = codec.decode_response(stub.Compute(_by_reference(doubled.hash, x, "sum"),
                                                   timeout=60))
    assert float(total2) == pytest.approx(2 * want, rel=1e-4, abs=2e-2)
    key = keys.tensor_key("default", msg.hash)
    client = connect(redis.url)
    assert client.type(key) == b"hash" and client.hlen(key) == len(msg.data) // CHUNK + 2


def test_the_result_cache_and_tensors_spread_over_the_masters(on_cluster):
    redis, c = on_cluster
    stub = c.stub()
    owners = set()
    for i in range(12):
        x = np.full(100, float(i), np.float32)
        msg = codec.encode_array(x)
        stub.PutTensor(iter(codec.to_chunks(msg)), timeout=30)
        owners.add(_owner(redis, keys.tensor_key("default", msg.hash)))
        first = stub.Compute(_by_reference(msg.hash, x, "sum"), timeout=30)
        again = stub.Compute(_by_reference(msg.hash, x, "sum"), timeout=30)
        assert not first.cache_hit and again.cache_hit
        assert float(codec.decode_response(again)[0]) == 100.0 * i
    assert len(owners) >= 2, owners  # hash tags by digest: not all on one node


def test_the_registry_lives_on_one_node_and_lists_the_worker(on_cluster):
    redis, c = on_cluster
    (worker,) = c.status().workers
    client = connect(redis.url)
    assert list(registry.workers(client)) == [worker.address]
    assert _owner(redis, keys.WORKER_RECORDS) == _owner(redis, keys.WORKER_EXPIRY)


def test_the_rate_limiter_keeps_its_bucket_on_the_cluster(on_cluster):
    redis, c = on_cluster
    # a call through the limiter (ClusterStatus is not limited, whatever ran before)
    c.stub().HasTensors(pb.HasTensorsRequest(hashes=["0" * 32]), timeout=10)
    assert connect(redis.url).exists(keys.rate_key("default"))
