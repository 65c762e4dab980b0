"""Kept results stay where they are computed (issue 13, DESIGN.md "State and names").

Against a real `remotegrad cluster up` (redis-server, gateway, two workers): a training
step's answer from its worker carries no kept bytes (the gateway's own count of what
workers send it); kept names are the documented provenance derivation, known from the
request alone before any value exists; their durable copies appear in Redis, written by
the worker (its own count), with the values PyTorch computes.
"""

from __future__ import annotations

import re
import time
import urllib.request

import numpy as np
import pytest
from test_durability import TOKENS, N, _train, cluster_up  # noqa: F401
from test_supervisor import _free_ports

from procs import wait_until
from remotegrad.proto import codec, keys
from remotegrad.proto.kept import KeptCopies

pytestmark = pytest.mark.integration

pt = pytest.importorskip("torch")


def _metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    found = re.search(rf"^{name} (\S+)$", text.decode(), re.M)
    return float(found.group(1)) if found else 0.0


ANSWER = "remotegrad_worker_answer_bytes_total"
WRITTEN = "remotegrad_kept_bytes_written_total"
SKIPPED = "remotegrad_kept_bytes_skipped_total"


def test_a_training_steps_answer_carries_no_kept_bytes_and_its_worker_writes_the_copy(
        tmp_path):
    """32x32 SGD with momentum keeps 8 KiB a step (the weight and its momentum): what the
    workers send the gateway per step is far less (the loss and names); the workers'
    own count of copy bytes written grows by the kept bytes; the weight's durable copy
    in Redis is PyTorch's weight."""
    metrics = _free_ports(3)
    with cluster_up(tmp_path, "--metrics-port", str(metrics)) as up:
        twin = _train(up)
        for _ in range(3):
            twin.step()
        answered = _metric(metrics, ANSWER)
        assert answered > 0  # the gateway counts what workers send it
        # a copy is written, or skipped when the client released it before its write
        # began (coalescing: more often when the write thread lags, under load)
        def handled():
            return sum(_metric(metrics + 1 + i, WRITTEN) + _metric(metrics + 1 + i, SKIPPED)
                       for i in range(2))
        written = handled()
        steps = 5
        for _ in range(steps):
            twin.step()
        per_step = (_metric(metrics, ANSWER) - answered) / steps
        kept = 2 * N * N * 4
        assert per_step < kept / 4, f"{per_step:.0f} bytes a step from the workers"
        wait_until(lambda: handled() >= written + steps * kept, "the workers' copies",
                   timeout=30)
        name = twin.w._node.hash
        copies = KeptCopies(up.redis())
        wait_until(lambda: copies.get("train", name) is not None, "the weight's copy",
                   timeout=10)
        copy = codec.decode_array(copies.get("train", name))
        np.testing.assert_allclose(copy, twin.w_pt.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert codec.array_hash(copy) != name  # named by provenance, not by its bytes
        print(f"\n[kept] {per_step:.0f} bytes a step from the workers to the gateway "
              f"(kept: {kept} bytes a step, written by the workers)")


def test_kept_names_are_the_provenance_derivation_known_before_the_value(tmp_path):
    """The name a raw client computes from its request alone (proto/provenance.py's
    fingerprint and kept_names, proto/keys.py kept_name) is the name the cluster answers,
    and the durable copy appears under it."""
    import grpc

    from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
    from remotegrad.proto.codec import WireNode
    from remotegrad.proto import provenance
    a = np.random.default_rng(3).standard_normal((64, 8)).astype(np.float32)
    h = codec.array_hash(a)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": a.shape}),
             WireNode(1, "mul", (0, 0), {}), WireNode(2, "sum", (1,), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a, h)], [2, 1])
    req.keep.append(1)
    decoded = codec.decode_request(req)  # what an SDK knows before it sends the request
    call = provenance.fingerprint(decoded.nodes, decoded.targets)
    expected = keys.kept_name(call, 1)  # node 1 is the second target
    assert provenance.kept_names(call, decoded.targets, [1]) == {1: expected}
    with cluster_up(tmp_path) as up:
        copies = KeptCopies(up.redis())
        assert copies.get("train", expected) is None  # nothing exists yet
        with grpc.insecure_channel(up.address) as ch:
            resp = pb_grpc.GatewayStub(ch).Compute(
                req, timeout=30, metadata=(("authorization", "Bearer train-token-0123456789"),))
        kept = resp.results[1]
        assert kept.hash == expected and not kept.data
        assert list(kept.shape) == [64, 8] and kept.dtype == "float32"
        assert codec.decode_array(resp.results[0]) == pytest.approx(float((a * a).sum()),
                                                                    rel=1e-5)
        start = time.monotonic()
        wait_until(lambda: copies.get("train", expected) is not None, "the copy", timeout=10)
        np.testing.assert_array_equal(codec.decode_array(copies.get("train", expected)), a * a)
        print(f"\n[kept] name {expected} known before the call; its copy landed "
              f"{time.monotonic() - start:.3f}s after the answer")


def _keep_square(up, seed: int, release=()):
    """As tenant `train` (raw gRPC): keep a * a, a random 64x8, releasing `release`;
    (the kept name, a * a)."""
    import grpc

    from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
    from remotegrad.proto.codec import WireNode
    a = np.random.default_rng(seed).standard_normal((64, 8)).astype(np.float32)
    h = codec.array_hash(a)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": a.shape}),
             WireNode(1, "mul", (0, 0), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a, h)], [1])
    req.keep.append(1)
    req.release.extend(release)
    with grpc.insecure_channel(up.address) as ch:
        resp = pb_grpc.GatewayStub(ch).Compute(
            req, timeout=30, metadata=(("authorization", "Bearer train-token-0123456789"),))
    return resp.results[0].hash, a * a


def test_a_copy_whose_write_failed_lands_once_redis_takes_it_again(tmp_path):
    """Redis refuses the copies' keys for a while (an ACL: reads work, writes fail) when
    a call keeps a result: its holder tries the write again by itself and the copy lands
    once Redis takes it, with the value computed; the gateway then sees it (its lineage
    goes), so the client's release of the name is made and the copy and its ledger
    bytes go. Before, the failed write was never tried again: the copy never landed."""
    with cluster_up(tmp_path) as up:
        r, p = up.redis(), keys.PREFIX
        copies = KeptCopies(r)
        r.execute_command("ACL", "SETUSER", "default", "resetkeys", f"~{p}:[^k]*",
                          f"~{p}:kept-*", f"%R~{p}:kept:*")
        try:
            name, value = _keep_square(up, 11)
            wait_until(lambda: name in up.log.read_text(), "the holder's failed write",
                       timeout=20)
            assert copies.get("train", name) is None
        finally:
            r.execute_command("ACL", "SETUSER", "default", "allkeys")
        wait_until(lambda: copies.get("train", name) is not None, "the copy, written again",
                   timeout=30)
        np.testing.assert_array_equal(codec.decode_array(copies.get("train", name)), value)
        assert int(r.hget(keys.kept_ledger_key("train"), "bytes")) == value.nbytes
        _keep_square(up, 12, release=[name])  # the client dropped it
        wait_until(lambda: copies.get("train", name) is None, "the released copy gone",
                   timeout=20)
        wait_until(lambda: int(r.hget(keys.kept_ledger_key("train"), "bytes")) ==
                   value.nbytes, "the ledger of the one kept", timeout=20)


def test_copies_kept_while_the_ledger_is_unreachable_are_counted_and_released(tmp_path):
    """Redis refuses the tenants' ledgers for a while (an ACL; copies and all else work)
    when a call keeps a result: the call runs (nothing could be reserved) and its holder
    writes the copy; once the ledger answers again the gateway counts that copy in the
    tenant's quota, and the client's release of it deletes it. Before, such a copy was
    never counted (outside the quota) and never deleted (a release frees only what the
    ledger holds)."""
    with cluster_up(tmp_path) as up:
        r, p = up.redis(), keys.PREFIX
        copies = KeptCopies(r)
        ledger = keys.kept_ledger_key("train")
        r.execute_command("ACL", "SETUSER", "default", "resetkeys", f"~{p}:[^k]*",
                          f"~{p}:kept:*", f"~{keys.KEPT_TENANTS}")
        try:
            name, value = _keep_square(up, 21)
            wait_until(lambda: copies.get("train", name) is not None, "the copy",
                       timeout=20)
        finally:
            r.execute_command("ACL", "SETUSER", "default", "allkeys")
        wait_until(lambda: int(r.hget(ledger, "bytes") or 0) == value.nbytes,
                   "the copy counted in the ledger", timeout=20)
        np.testing.assert_array_equal(codec.decode_array(copies.get("train", name)), value)
        other, _ = _keep_square(up, 22, release=[name])  # the client dropped it
        wait_until(lambda: copies.get("train", name) is None, "the released copy gone",
                   timeout=20)
        assert int(r.hget(ledger, "bytes")) == value.nbytes  # the other one's
        assert r.hexists(ledger, f"h:{other}") and not r.hexists(ledger, f"h:{name}")


def _call(up, nodes, targets, keep, release=()):
    """As tenant `train` (raw gRPC): the answer's results."""
    import grpc

    from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
    req = codec.encode_request(nodes, [], targets)
    req.keep.extend(keep)
    req.release.extend(release)
    with grpc.insecure_channel(up.address) as ch:
        return pb_grpc.GatewayStub(ch).Compute(
            req, timeout=60, metadata=(("authorization", "Bearer train-token-0123456789"),)
        ).results




# serial: the skip needs the 60 MiB copy's write still running after three small calls
# (about 8x the time they take here); CPU load beside it shrinks that margin
@pytest.mark.serial
def test_a_copy_released_before_its_write_began_is_skipped_and_its_release_made(tmp_path):
    """Coalescing, through a real cluster, as a training loop's steps: a 60 MiB kept
    result keeps its holder's write thread busy; meanwhile w1 (read from it, so computed
    by the same worker), then w2 = 3 * w1 are kept, and the next call keeps w3 = 3 * w2
    and releases w1. The holder skips w1's copy (its own counter says so); the gateway
    keeps w1's lineage until w2's copy lands (recomputing w2 needs w1), then makes w1's
    release: w1's ledger entry and key go; w2's and w3's copies are PyTorch's values."""
    from remotegrad.proto.codec import WireNode
    metrics = _free_ports(3)
    # float32: 60 MiB, under the worker's write-behind bound (64 MiB: past it a call's
    # copies are written at once, in its own thread, and nothing waits to be skipped)
    n = 15 << 20

    def times3(name, release=()):
        return _call(up, [WireNode(0, "leaf", (), {"hash": name, "dtype": "float32",
                                                   "shape": (4,)}),
                          WireNode(1, "const", (), {"value": 3.0}),
                          WireNode(2, "mul", (0, 1), {})], [2], [2], release)[0].hash

    with cluster_up(tmp_path, "--metrics-port", str(metrics)) as up:
        r = up.redis()
        copies, ledger = KeptCopies(r), keys.kept_ledger_key("train")
        big = _call(up, [WireNode(0, "full", (), {"shape": (n,), "value": 1.0,
                                                  "dtype": "float32"})], [0], [0])[0].hash
        leaf = {"hash": big, "dtype": "float32", "shape": (n,)}
        w1 = _call(up, [WireNode(0, "leaf", (), leaf),
                        WireNode(1, "narrow", (0,), {"dim": 0, "start": 0, "length": 4}),
                        WireNode(2, "mul", (1, 1), {})], [2], [2])[0].hash
        w2 = times3(w1)
        w3 = times3(w2, release=[w1])  # the client dropped w1
        wait_until(lambda: sum(_metric(metrics + 1 + i, SKIPPED) for i in range(2)) > 0,
                   "the holder's skipped copy", timeout=30)
        wait_until(lambda: copies.get("train", w3) is not None, "w3's copy", timeout=30)
        wait_until(lambda: not r.exists(keys.kept_key("train", w1)) and
                   not r.hexists(ledger, f"h:{w1}"), "w1's release", timeout=30)
        one = pt.ones(n)[:4]
        for name, want in ((w2, one * one * 3.0), (w3, one * one * 9.0)):
            np.testing.assert_array_equal(codec.decode_array(copies.get("train", name)),
                                          want.numpy())
            assert r.hexists(ledger, f"h:{name}")
