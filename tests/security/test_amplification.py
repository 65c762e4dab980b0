"""Issue 15, item 10 (the gateway's part): a small request must not make the gateway hold
large tensors in memory.

FetchTensor streams a stored tensor from Redis to the client as it is read (server/fetch.py),
one 4 MiB message at a time, so concurrent fetches of a large tensor cost the gateway a few
messages each, not the tensor several times over. A tensor one of whose chunks is gone is
refused before the first byte. A Compute answer keeps at most --inline-result-bytes inline
in all, however many targets (or repeats of one) it lists; the rest go by reference.

Before: four concurrent fetches of a 256 MiB tensor took the gateway's peak RSS (VmHWM) up by
2070 MiB (the joined value, the message holding it and the list of its messages, per
fetch); after, by 268 MiB (each fetch holds one 32 MiB stored chunk at a time). A result
listed eight times came back as one 32 MiB message over an 8 MiB limit.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from procs import start_redis, stop
from remotegrad.proto import codec, keys
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode
from remotegrad.proto.store import CHUNK, RedisTensorStore
from sectools import Procs, as_tenant, code_of, until, wait_for_workers

pytestmark = pytest.mark.integration

MiB = 1 << 20
TOKEN = "tok-amplify-0123456789abcdef"
BIG = 256 * MiB
BOB = "tok-amplify-bob-0123456789"
IDLE = 3  # seconds a stream may go without a chunk taken (the gateway's default: 30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    redis = start_redis()
    procs = Procs(redis, tmp_path_factory.mktemp("amplification"))
    try:
        gw = procs.gateway("--tokens", f"{TOKEN}=alice,{BOB}=bob", "--inline-result-bytes",
                           str(8 * MiB), "--stream-idle-timeout", str(IDLE))
        procs.worker()
        ch = grpc.insecure_channel(gw.address, options=[
            ("grpc.max_receive_message_length", -1)])
        stub = pb_grpc.GatewayStub(ch)
        wait_for_workers(stub, 1, TOKEN)
        yield procs, gw, stub
        ch.close()
    finally:
        procs.close()
        stop(redis.proc)


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))


def _stored(procs, n_bytes: int, seed: int) -> tuple[pb.TensorData, str]:
    """A tensor written into the gateway's Redis through the store's own API (so the
    gateway has never held it), and its digest."""
    x = np.random.default_rng(seed).standard_normal(n_bytes // 4, dtype=np.float32)
    msg = codec.encode_array(x)
    RedisTensorStore(procs.redis.url).put("alice", msg)
    return msg, msg.hash


def _slow_fetch(stub, digest: str, out: list, pause: float = 0.02) -> None:
    """Fetch, reading like a slow client: the streams overlap in time."""
    got = 0
    try:
        for chunk in stub.FetchTensor(pb.FetchTensorRequest(hash=digest),
                                      metadata=as_tenant(TOKEN), timeout=120):
            assert chunk.offset == got
            got += len(chunk.data)
            time.sleep(pause)
        out.append(got)
    except grpc.RpcError as e:
        out.append(e.code().name)


@pytest.mark.slow
def test_concurrent_large_fetches_do_not_buffer_the_tensor(lab):
    procs, gw, stub = lab
    msg, digest = _stored(procs, BIG, seed=1)
    # One whole fetch, reassembled and hash-checked the way the SDK does: the same bytes.
    chunks = stub.FetchTensor(pb.FetchTensorRequest(hash=digest), metadata=as_tenant(TOKEN),
                              timeout=120)
    back = codec.from_chunks(chunks, max_bytes=BIG)
    assert back.data == msg.data and list(back.shape) == list(msg.shape)
    del back, chunks

    pid = gw.popen.pid
    before = _status(pid, "VmHWM")
    results: list = []
    peak_rss = [0]
    threads = [threading.Thread(target=_slow_fetch, args=(stub, digest, results))
               for _ in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):  # sampled too: VmHWM alone could hide a dip
        peak_rss[0] = max(peak_rss[0], _status(pid, "VmRSS"))
        time.sleep(0.02)
    for t in threads:
        t.join(timeout=120)
    grown = _status(pid, "VmHWM") - before
    print(f"\ngateway peak RSS grew {grown / MiB:.1f} MiB over 4 concurrent fetches of a "
          f"{BIG // MiB} MiB tensor (sampled VmRSS peak {peak_rss[0] / MiB:.0f} MiB)")
    assert results == [BIG] * 4
    # Each fetch holds one stored chunk (with redis-py's buffer for reading it) and a few
    # messages: under three chunks' worth each, whatever the tensor's size.
    assert grown < 4 * 3 * CHUNK, grown


def test_a_kept_tensors_durable_copy_is_streamed_too(lab):
    """A kept result whose store key is gone is read from its durable copy (proto/kept.py),
    chunk by chunk like any other."""
    from remotegrad.proto.kept import KeptCopies
    procs, _, stub = lab
    x = np.random.default_rng(4).standard_normal(40 * MiB // 4, dtype=np.float32)
    msg = codec.encode_array(x)
    KeptCopies(procs.redis.client()).write("alice", msg)
    sizes: list[int] = []

    def counted():
        for chunk in stub.FetchTensor(pb.FetchTensorRequest(hash=msg.hash),
                                      metadata=as_tenant(TOKEN), timeout=60):
            sizes.append(len(chunk.data))
            yield chunk
    back = codec.from_chunks(counted(), max_bytes=64 * MiB)
    assert back.data == msg.data and max(sizes) <= codec.STREAM_CHUNK and len(sizes) == 10


def test_a_tensor_missing_a_chunk_is_refused_before_any_byte(lab):
    procs, _, stub = lab
    client = procs.redis.client()
    for seed, damage in ((2, "evicted"), (3, "truncated")):
        _, digest = _stored(procs, 80 * MiB, seed=seed)  # three chunks
        key = keys.tensor_key("alice", digest)  # one hash: header and chunks 0, 1, 2
        if damage == "evicted":
            client.hdel(key, "1")
        else:
            client.hset(key, "1", b"short")
        got: list = []

        def fetch(digest=digest, got=got) -> None:
            for chunk in stub.FetchTensor(pb.FetchTensorRequest(hash=digest),
                                          metadata=as_tenant(TOKEN), timeout=30):
                got.append(len(chunk.data))
        code, details = code_of(fetch)
        assert (code, got) == ("FAILED_PRECONDITION", []), (damage, code, details, got)
        assert digest in details


def test_an_answer_inlines_at_most_the_limit_in_all(lab):
    _, _, stub = lab
    x = np.arange(MiB, dtype=np.float32)  # 4 MiB; its negation listed eight times
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": x.shape}),
             WireNode(1, "neg", (0,), {})]
    req = codec.encode_request(nodes, [codec.encode_array(x, h)], [1] * 8)
    resp = stub.Compute(req, metadata=as_tenant(TOKEN), timeout=60)
    inline = [r for r in resp.results if r.data]
    by_ref = [r for r in resp.results if not r.data]
    assert sum(len(r.data) for r in inline) <= 8 * MiB
    assert len(inline) == 2 and len(by_ref) == 6
    assert resp.ByteSize() < 9 * MiB
    for r in inline:
        np.testing.assert_array_equal(codec.decode_array(r), -x)
    fetched = codec.from_chunks(stub.FetchTensor(pb.FetchTensorRequest(hash=by_ref[0].hash),
                                                 metadata=as_tenant(TOKEN), timeout=60),
                                max_bytes=8 * MiB)
    np.testing.assert_array_equal(codec.decode_array(fetched), -x)


@pytest.mark.slow
def test_fetches_whose_clients_stop_reading_are_bounded_and_cancelled(lab):
    """A client that starts a fetch and never reads on holds a gateway thread and a stored
    chunk: at most 4 such streams per tenant (with its PutTensor streams), 16 in all, and
    each is cancelled after --stream-idle-timeout without a chunk taken. Before, 8 such
    fetches held 8 of the 32 threads and +490 MiB for as long as their clients lived."""
    procs, gw, stub = lab
    # Large enough that the transports' buffers cannot take it all while nobody reads.
    _, digest = _stored(procs, BIG, seed=5)
    channels, stalled = [], []
    try:
        firsts = []
        for _ in range(4):
            ch = grpc.insecure_channel(gw.address, options=[
                ("grpc.max_receive_message_length", -1)])
            it = pb_grpc.GatewayStub(ch).FetchTensor(pb.FetchTensorRequest(hash=digest),
                                                      metadata=as_tenant(TOKEN), timeout=60)
            # One chunk, then nothing. Only two get one: a tenant's fetches hold at most
            # half the gateway's bytes in flight (test_fetch_bytes.py), the others wait.
            threading.Thread(target=lambda it=it: code_of(lambda: firsts.append(next(it))),
                             daemon=True).start()
            channels.append(ch)
            stalled.append(it)
        until(lambda: len(firsts) == 2, "two stalled fetches sending")
        time.sleep(0.5)  # the other two admitted, waiting for room
        # A fifth of the same tenant is refused at once; another tenant is not affected.
        code, details = code_of(lambda: list(stub.FetchTensor(
            pb.FetchTensorRequest(hash=digest), metadata=as_tenant(TOKEN), timeout=10)))
        assert code == "RESOURCE_EXHAUSTED" and "streams" in details, (code, details)
        code, _ = code_of(lambda: list(stub.FetchTensor(
            pb.FetchTensorRequest(hash=digest), metadata=as_tenant(BOB), timeout=10)))
        assert code == "FAILED_PRECONDITION"  # bob's own namespace: admitted, not there
        # The stalled ones are cancelled once idle (what reached the client's buffers
        # before is still read); then the tenant may fetch again.
        time.sleep(IDLE + 2)
        for it in stalled:
            assert code_of(lambda it=it: list(it))[0] == "CANCELLED"
        got: list = []
        _slow_fetch(stub, digest, got, pause=0)
        assert got == [BIG]
    finally:
        for ch in channels:
            ch.close()
