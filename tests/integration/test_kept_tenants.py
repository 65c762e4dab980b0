"""Kept names are the same for every tenant making the same call (proto/provenance.py);
what the cluster holds under them is not shared (server/holders.py keys its entries by
(tenant, name), workers and durable copies too).

Against a real `remotegrad cluster up` (redis-server, gateway, two workers): a name only
tenant A holds is absent to tenant B (HasTensors) and refused as a leaf of B's calls,
before its copy is written (Redis refusing the copies' keys) and after; two tenants
training the same model identically, at the same time, get the same names and each
PyTorch's values, with the copies refused and with them written.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from test_durability import TOKENS, N, _train, cluster_up  # noqa: F401
from test_supervisor import _free_ports

from procs import wait_until
from remotegrad.proto import codec, keys
from remotegrad.proto.kept import KeptCopies

pytestmark = pytest.mark.integration

pytest.importorskip("torch")

A = ("authorization", "Bearer train-token-0123456789")  # tenant "train"
B = ("authorization", "Bearer other-token-0123456789")  # tenant "other"
HERE = Path(__file__).resolve().parent


def _read_only_copies(r) -> None:
    """Redis refuses writes to the durable copies' keys (reads work): copies never land."""
    p = keys.PREFIX
    r.execute_command("ACL", "SETUSER", "default", "resetkeys", f"~{p}:[^k]*",
                      f"~{p}:kept-*", f"%R~{p}:kept:*")


def _writable(r) -> None:
    r.execute_command("ACL", "SETUSER", "default", "allkeys")


def _keep_square(stub, a: np.ndarray):
    """As tenant A: keep a * a (raw gRPC); its kept result."""
    from remotegrad.proto.codec import WireNode
    h = codec.array_hash(a)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": a.shape}),
             WireNode(1, "mul", (0, 0), {}), WireNode(2, "sum", (1,), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a, h)], [2, 1])
    req.keep.append(1)
    return stub.Compute(req, timeout=30, metadata=(A,)).results[1]


def _use(stub, name: str, shape, who):
    """sum(leaf `name`) as tenant `who`, naming the leaf only by its name."""
    from remotegrad.proto.codec import WireNode
    nodes = [WireNode(0, "leaf", (), {"hash": name, "dtype": "float32", "shape": shape}),
             WireNode(1, "sum", (0,), {})]
    return stub.Compute(codec.encode_request(nodes, [], [1]), timeout=30, metadata=(who,))


def _present(stub, name: str, who) -> bool:
    from remotegrad.proto import remotegrad_pb2 as pb
    return list(stub.HasTensors(pb.HasTensorsRequest(hashes=[name]), timeout=10,
                                metadata=(who,)).present) == [True]


def _worker_executes(ports) -> float:
    """Worker/Execute calls the workers answered, whatever their code (their metrics)."""
    total = 0.0
    for port in ports:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        total += sum(float(v) for v in re.findall(
            r'^remotegrad_calls_total\{[^}]*method="Execute"[^}]*\} (\S+)$', text.decode(),
            re.M))
    return total


def _check_tenants_apart(stub, name: str, a: np.ndarray, workers) -> None:
    """A sees its name and computes on it; B does not see it, and its call naming it is
    refused by the gateway itself (no worker is asked: A's holder entry is not B's)."""
    import grpc
    assert _present(stub, name, A)
    assert not _present(stub, name, B)
    total = codec.decode_array(_use(stub, name, a.shape, A).results[0])
    assert total == pytest.approx(float((a * a).sum()), rel=1e-5)
    before = _worker_executes(workers)
    with pytest.raises(grpc.RpcError) as e:
        _use(stub, name, a.shape, B)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert name in e.value.details()
    assert _worker_executes(workers) == before


def test_a_name_only_one_tenant_holds_is_absent_to_another(tmp_path):
    import grpc

    from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
    a = np.random.default_rng(5).standard_normal((64, 8)).astype(np.float32)
    metrics = _free_ports(3)
    workers = (metrics + 1, metrics + 2)
    with cluster_up(tmp_path, "--metrics-port", str(metrics)) as up, \
            grpc.insecure_channel(up.address) as ch:
        stub, r = pb_grpc.GatewayStub(ch), up.redis()
        copies = KeptCopies(r)
        _read_only_copies(r)
        try:
            name = _keep_square(stub, a).hash
            _check_tenants_apart(stub, name, a, workers)  # held by A's worker only, no copy
            assert copies.get("train", name) is None
        finally:
            _writable(r)
        name2 = _keep_square(stub, a * 2).hash
        wait_until(lambda: copies.get("train", name2) is not None, "A's copy", timeout=10)
        _check_tenants_apart(stub, name2, a * 2, workers)  # with its copy written
        assert copies.get("other", name2) is None


CHILD = """
import sys
sys.path[:0] = [{tests!r}, {here!r}]
import remotegrad as rg
from test_durability import Twin
rg.connect({address!r}, token="other-token-0123456789")
twin = Twin()
for line in sys.stdin:
    for _ in range(int(line)):
        twin.step()
    name = twin.w._node.hash  # before reading the weight back (that drops the name)
    twin.check_weights()
    print(name, flush=True)
"""


def test_two_tenants_training_the_same_model_each_get_their_own_values(tmp_path):
    """Tenant B (a child process, the same seed) and tenant A train in turns, steps
    interleaved: the same provenance names, and every loss and weight PyTorch's, with
    the copies refused (held by workers only) and then written; each tenant's copy of
    the weight is its own, and PyTorch's."""
    with cluster_up(tmp_path) as up:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(tests=str(HERE.parent), here=str(HERE),
                                                address=up.address)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            twin = _train(up)
            r = up.redis()

            def turn(steps: int) -> str:
                child.stdin.write(f"{steps}\n")
                child.stdin.flush()
                for _ in range(steps):
                    twin.step()
                ours = twin.w._node.hash  # before check_weights reads the weight back
                assert ours and keys.is_digest(ours)
                twin.check_weights()
                theirs = child.stdout.readline().strip()
                assert theirs, f"tenant B's training failed (exit {child.poll()})"
                assert theirs == ours  # the same call: the same provenance name
                return ours

            turn(2)
            _read_only_copies(r)
            try:
                for _ in range(2):
                    turn(2)  # held by workers only
            finally:
                _writable(r)
            name = turn(2)
            copies = KeptCopies(r)
            for tenant in ("train", "other"):
                wait_until(lambda t=tenant: copies.get(t, name) is not None,
                           f"{tenant}'s copy", timeout=10)
                np.testing.assert_allclose(codec.decode_array(copies.get(tenant, name)),
                                           twin.w_pt.detach().numpy(), rtol=1e-5, atol=1e-6)
            child.stdin.close()
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
