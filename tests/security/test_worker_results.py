"""Issue 15, item 10 (the worker's part): a large result must not reach the gateway.

The gateway sends its --inline-result-bytes with each Worker/Execute call; a worker with
the shared store (Redis) stores every result past it in the tenant's tensor store itself
and answers it by hash without data (worker/by_reference.py), inlining at most the bound
in all. The gateway passes such results on as they came (server/gateway.py _by_reference).

Before: a 256 MiB result was one 256 MiB Execute answer, which the gateway received
whole (gRPC's buffers, the bytes and the parsed message) before storing it in Redis:
its peak RSS (VmHWM) grew by about three times the result. Now the answer is a few
hundred bytes and the gateway's peak does not move by more than noise.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from procs import start_redis, stop
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode
from remotegrad.proto.store import RedisTensorStore
from remotegrad.worker.compute import compute
from remotegrad.worker.service import worker_store
from sectools import Procs, as_tenant, wait_for_workers

pytestmark = pytest.mark.integration

MiB = 1 << 20
TOKEN = "tok-worker-results-0123456789ab"
LIMIT = 8 * MiB
N = 8192  # an N×1 plus a 1×N float32: a 256 MiB sum from 64 KiB of leaves


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    redis = start_redis()
    procs = Procs(redis, tmp_path_factory.mktemp("worker-results"))
    try:
        gw = procs.gateway("--tokens", f"{TOKEN}=alice", "--inline-result-bytes", str(LIMIT))
        worker = procs.worker()
        options = [("grpc.max_receive_message_length", -1)]
        ch = grpc.insecure_channel(gw.address, options=options)
        wch = grpc.insecure_channel(worker.address, options=options)
        stub = pb_grpc.GatewayStub(ch)
        wait_for_workers(stub, 1, TOKEN)
        yield procs, gw, stub, pb_grpc.WorkerStub(wch)
        ch.close()
        wch.close()
    finally:
        procs.close()
        stop(redis.proc)


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))


def _leaf(i: int, x: np.ndarray) -> WireNode:
    return WireNode(i, "leaf", (), {"hash": codec.array_hash(x), "dtype": x.dtype.name,
                                    "shape": x.shape})


def _outer_sum(seed: int) -> tuple[pb.ComputeRequest, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((N, 1), dtype=np.float32)
    b = rng.standard_normal((1, N), dtype=np.float32)
    nodes = [_leaf(0, a), _leaf(1, b), WireNode(2, "add", (0, 1), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a), codec.encode_array(b)], [2])
    return req, a + b


def _repeated(x: np.ndarray, times: int) -> pb.ComputeRequest:
    """-x listed `times` times."""
    nodes = [_leaf(0, x), WireNode(1, "neg", (0,), {})]
    return codec.encode_request(nodes, [codec.encode_array(x)], [1] * times)


def _fetch(stub, digest: str, nbytes: int) -> np.ndarray:
    chunks = stub.FetchTensor(pb.FetchTensorRequest(hash=digest), metadata=as_tenant(TOKEN),
                              timeout=120)
    return codec.decode_array(codec.from_chunks(chunks, max_bytes=nbytes))


def test_a_large_result_is_stored_by_its_worker_not_sent_to_the_gateway(lab):
    _, gw, stub, worker = lab
    # Warm: the gateway's first call (plans, pools, threads) is not what is measured.
    small = _repeated(np.arange(16, dtype=np.float32), 1)
    stub.Compute(small, metadata=as_tenant(TOKEN), timeout=60)

    req, want = _outer_sum(seed=1)
    # The worker itself, called as the gateway calls it: a small answer, the bytes stored.
    direct = pb.ComputeRequest()
    direct.CopyFrom(req)
    direct.inline_result_bytes = LIMIT
    answer = worker.Execute(direct, metadata=(("x-tenant", "alice"),), timeout=120)
    (r,) = answer.results
    assert (r.data, r.dtype, list(r.shape)) == (b"", "float32", [N, N]) and r.hash
    assert answer.ByteSize() < 4096, answer.ByteSize()

    pid = gw.popen.pid
    before = _status(pid, "VmHWM")
    resp = stub.Compute(req, metadata=as_tenant(TOKEN), timeout=120)  # computed again
    grown = _status(pid, "VmHWM") - before
    print(f"\ngateway peak RSS grew {grown / MiB:.1f} MiB over a Compute with a "
          f"{want.nbytes // MiB} MiB result")
    (got,) = resp.results
    assert (got.data, got.hash) == (b"", r.hash)  # the same content-named key, rewritten
    assert not resp.cache_hit and resp.ByteSize() < 4096
    # Before, the gateway received the 256 MiB answer whole: ~3x that at its peak.
    assert grown < 32 * MiB, grown
    np.testing.assert_array_equal(_fetch(stub, got.hash, want.nbytes), want)


def test_the_worker_inlines_at_most_the_bound_in_all(lab):
    procs, _, stub, worker = lab
    x = np.arange(MiB, dtype=np.float32)  # 4 MiB; its negation listed eight times
    req = _repeated(x, 8)
    plain = worker.Execute(req, metadata=(("x-tenant", "alice"),), timeout=60)
    assert all(len(r.data) == x.nbytes for r in plain.results)  # no bound sent: inline

    req.inline_result_bytes = LIMIT
    resp = worker.Execute(req, metadata=(("x-tenant", "alice"),), timeout=60)
    inline = [r for r in resp.results if r.data]
    by_ref = [r for r in resp.results if not r.data]
    assert len(inline) == 2 and len(by_ref) == 6 and resp.ByteSize() < LIMIT + MiB
    assert len({r.hash for r in by_ref}) == 1  # hashed and stored once
    for r in inline:
        np.testing.assert_array_equal(codec.decode_array(r), -x)
    stored = RedisTensorStore(procs.redis.url).get("alice", by_ref[0].hash)
    np.testing.assert_array_equal(codec.decode_array(stored, verify_hash=True), -x)
    # Through the gateway, the same answer; what came stored is fetched from the store.
    through = stub.Compute(req, metadata=as_tenant(TOKEN), timeout=60)
    assert [bool(r.data) for r in through.results] == [bool(r.data) for r in resp.results]
    np.testing.assert_array_equal(_fetch(stub, through.results[-1].hash, LIMIT), -x)


def test_a_worker_without_the_shared_store_answers_inline():
    """Its store is its own (the gateway cannot read it); a worker whose Redis is down
    cannot store either: both answer every result with its bytes, as before."""
    x = np.arange(MiB, dtype=np.float32)
    req = _repeated(x, 4)
    req.inline_result_bytes = LIMIT
    for url in ("", "redis://127.0.0.1:1/0"):  # none; a port nobody listens on
        store, _ = worker_store(url, ttl=60, cache_bytes=64 * MiB)
        resp = compute(req, store, "alice")
        assert [len(r.data) for r in resp.results] == [x.nbytes] * 4, url
        for r in resp.results:
            np.testing.assert_array_equal(codec.decode_array(r), -x)
