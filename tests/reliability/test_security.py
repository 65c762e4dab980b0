"""Security: TLS on every hop (client → gateway → workers, and Redis) with mutual TLS,
through `remotegrad cluster up`; tokens in metadata (health stays open); tenants that
cannot see each other's tensors or results; a per-tenant rate limit; no pickle anywhere."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certs import make_certs
from harness import PY, free_port, start_cluster, start_redis, stop, wait_until
from remotegrad.proto import codec, keys
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def _creds(certs, client_cert: bool = True) -> grpc.ChannelCredentials:
    ca = certs["ca.pem"].read_bytes()
    if not client_cert:
        return grpc.ssl_channel_credentials(ca)
    return grpc.ssl_channel_credentials(ca, certs["client.key"].read_bytes(),
                                        certs["client.pem"].read_bytes())


def _request(x: np.ndarray, inline: bool = True, keep: bool = False) -> pb.ComputeRequest:
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": x.dtype.name, "shape": x.shape}),
             WireNode(1, "mul", (0, 0), {}),
             WireNode(2, "sum", (1,), {"dim": None, "keepdim": False})]
    req = codec.encode_request(nodes, [codec.encode_array(x, h)] if inline else [], [1, 2])
    if keep:
        req.keep.append(1)
    return req


def _code(fn) -> tuple[str, str]:
    try:
        fn()
        return "OK", ""
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""


@pytest.mark.slow
def test_tls_on_every_hop_with_mutual_tls_through_cluster_up(certs):
    """Redis over TLS only, gateway and workers serving TLS and demanding client
    certificates; the SDK with a client certificate computes a gradient."""
    rport = free_port()
    redis = start_redis(free_port(), "--port", "0", "--tls-port", str(rport),
                        "--tls-cert-file", str(certs["server.pem"]),
                        "--tls-key-file", str(certs["server.key"]),
                        "--tls-ca-cert-file", str(certs["ca.pem"]), "--tls-auth-clients", "no")
    url = f"rediss://127.0.0.1:{rport}/0?ssl_ca_certs={certs['ca.pem']}"
    import redis as redis_py
    wait_until(lambda: redis_py.Redis.from_url(url).ping(), "redis over TLS")
    port = free_port()
    cluster = subprocess.Popen(
        [PY, "-m", "remotegrad.server.cli", "cluster", "up", "--workers", "2", "--port",
         str(port), "--redis-url", url, "--heartbeat", "0.5", "--log-level", "WARNING",
         "--tls-cert", str(certs["server.pem"]), "--tls-key", str(certs["server.key"]),
         "--tls-ca", str(certs["ca.pem"]), "--tls-client-auth", "true"],
        stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "ready" not in line and time.monotonic() < deadline:
            line = cluster.stdout.readline()
            assert line or cluster.poll() is None, "cluster up exited"
        assert "ready" in line, line
        address = f"127.0.0.1:{port}"

        import remotegrad as torch
        torch.connect(address, tls=_creds(certs))
        x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        (x * x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [[2.0, 4.0], [6.0, 8.0]])
        torch.connect("local")

        with grpc.secure_channel(address, _creds(certs)) as ch:
            workers = [w.address for w in pb_grpc.GatewayStub(ch).ClusterStatus(
                pb.ClusterStatusRequest(), timeout=5).workers]
        assert len(workers) == 2
        # Plaintext, or TLS without a client certificate, gets nowhere: gateway or worker.
        for target in (address, workers[0]):
            with grpc.insecure_channel(target) as ch:
                code, _ = _code(lambda ch=ch: pb_grpc.GatewayStub(ch).ClusterStatus(
                    pb.ClusterStatusRequest(), timeout=3))
                assert code == "UNAVAILABLE"
            with grpc.secure_channel(target, _creds(certs, client_cert=False)) as ch:
                code, _ = _code(lambda ch=ch: pb_grpc.WorkerStub(ch).Execute(
                    _request(np.ones(2, np.float32)), timeout=3))
                assert code == "UNAVAILABLE"
        # Redis answers on its TLS port only.
        assert redis_py.Redis.from_url(url).exists(keys.WORKER_RECORDS)
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
        stop(redis.popen)


TOKENS = "tok-alice=alice\ntok-bob=bob\n# a comment\ntok-carol=carol\n"


@pytest.fixture(scope="module")
def secured(tmp_path_factory, certs):
    """A gateway with TLS (server certificate only), tokens and a rate limit."""
    folder = tmp_path_factory.mktemp("secrets")
    (folder / "tokens").write_text(TOKENS)
    tls = ["--tls-cert", str(certs["server.pem"]), "--tls-key", str(certs["server.key"])]
    c = start_cluster(1, gateway_args=[*tls, "--tokens-file", str(folder / "tokens"),
                                       "--rate-limit", "40", "--rate-burst", "40"],
                      credentials=_creds(certs, client_cert=False), metadata=_as("alice"))
    yield c
    c.close()


def _as(tenant: str | None, token: str | None = None):
    if token is None and tenant is None:
        return ()
    return (("authorization", f"Bearer {token or 'tok-' + tenant}"),)


def test_token_required_health_open(secured):
    stub = pb_grpc.GatewayStub(secured.channel())
    for md in ((), _as(None, "wrong"), (("authorization", "tok-alice"),)):
        code, details = _code(lambda md=md: stub.Compute(_request(np.ones(3, np.float32)),
                                                        timeout=5, metadata=md))
        assert code == "UNAUTHENTICATED" and "token" in details
        code, _ = _code(lambda md=md: list(stub.FetchTensor(pb.FetchTensorRequest(hash="ab"),
                                                            timeout=5, metadata=md)))
        assert code == "UNAUTHENTICATED"
    assert stub.Compute(_request(np.ones(3, np.float32)), timeout=5, metadata=_as("alice"))
    health = health_pb2_grpc.HealthStub(secured.channel()).Check(
        health_pb2.HealthCheckRequest(service="remotegrad.v1.Gateway"), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    import remotegrad as torch
    from remotegrad._errors import AuthenticationError
    torch.connect(secured.address, token="wrong", tls=str(_ca(secured)))
    with pytest.raises(AuthenticationError, match="token"):
        float(torch.tensor([1.0, 2.0]).sum())
    torch.connect(secured.address, token="tok-bob", tls=str(_ca(secured)))
    assert float((torch.tensor([1.0, 2.0]) * 2).sum()) == 6.0
    torch.connect("local")


def test_status_command_with_tls_and_token(secured):
    import os
    env = dict(os.environ, REMOTEGRAD_TLS_CA=str(_ca(secured)), REMOTEGRAD_TOKEN="tok-alice")
    out = subprocess.run([PY, "-m", "remotegrad.server.cli", "status", "--address",
                          secured.address], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0 and "workers  1" in out.stdout, out.stdout + out.stderr
    env.pop("REMOTEGRAD_TOKEN")
    out = subprocess.run([PY, "-m", "remotegrad.server.cli", "status", "--address",
                          secured.address], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 1 and "token" in out.stdout


def _ca(c) -> Path:
    argv = c.gateway.popen.args
    return Path(argv[argv.index("--tls-cert") + 1]).with_name("ca.pem")


def test_tenants_cannot_see_each_others_tensors_or_results(secured):
    stub = pb_grpc.GatewayStub(secured.channel())
    # Large enough for the gateway to keep (smaller inline leaves are not stored).
    x = np.random.default_rng(3).standard_normal(20_000).astype(np.float32)
    h = codec.array_hash(x)
    first = stub.Compute(_request(x, keep=True), timeout=10, metadata=_as("alice"))
    kept = first.results[0].hash
    assert first.results[0].data == b""  # kept in the cluster, by reference
    # Alice's tensor and kept result exist for alice only, even to a caller knowing the hashes.
    has = lambda who: list(stub.HasTensors(pb.HasTensorsRequest(hashes=[h, kept]),
                                           timeout=5, metadata=_as(who)).present)
    assert has("alice") == [True, True] and has("bob") == [False, False]
    code, _ = _code(lambda: stub.Compute(_request(x, inline=False), timeout=5,
                                         metadata=_as("bob")))
    assert code == "FAILED_PRECONDITION"
    code, _ = _code(lambda: list(stub.FetchTensor(pb.FetchTensorRequest(hash=kept), timeout=5,
                                                  metadata=_as("bob"))))
    assert code == "FAILED_PRECONDITION"
    # A kept result is named by provenance (proto/keys.py kept_name), not by its bytes:
    # the stream names it, and its bytes are x * x.
    chunks = list(stub.FetchTensor(pb.FetchTensorRequest(hash=kept), timeout=5,
                                   metadata=_as("alice")))
    assert chunks[0].hash == kept
    np.testing.assert_array_equal(np.frombuffer(b"".join(c.data for c in chunks), np.float32),
                                  x * x)
    # The result cache is per tenant too: bob's first identical call is not alice's hit.
    stub.Compute(_request(x), timeout=10, metadata=_as("alice"))
    assert stub.Compute(_request(x), timeout=10, metadata=_as("alice")).cache_hit
    assert not stub.Compute(_request(x), timeout=10, metadata=_as("bob")).cache_hit
    assert stub.Compute(_request(x), timeout=10, metadata=_as("bob")).cache_hit
    from remotegrad.proto.keys import tensor_pattern
    tenants = {k.decode().split(":")[3] for k in secured_redis(secured).keys(tensor_pattern())}
    assert {"alice", "bob"} <= tenants


def secured_redis(c):
    import redis
    return redis.Redis(port=c.redis.port)


def test_rate_limit_per_tenant(secured):
    stub = pb_grpc.GatewayStub(secured.channel())
    codes, details = [], set()
    for _ in range(120):
        code, d = _code(lambda: stub.HasTensors(pb.HasTensorsRequest(hashes=["ab" * 16]), timeout=5,
                                                metadata=_as("carol")))
        codes.append(code)
        details.add(d)
    assert 35 <= codes.count("OK") < 100, codes.count("OK")
    assert codes.count("RESOURCE_EXHAUSTED") > 20
    assert any("carol" in d and "rate limit" in d for d in details)
    # Another tenant is not held back by carol's calls.
    assert stub.HasTensors(pb.HasTensorsRequest(hashes=["ab" * 16]), timeout=5,
                           metadata=_as("alice")).present == [False]


# Checkpoint files a user saves and loads on their own machine (torch.save of a whole
# module is a pickle in PyTorch too, loaded in full only with weights_only=False). Nothing
# that reads the wire imports them: the wire never unpickles.
CHECKPOINT_FILES = {"client/_pickled.py", "client/_serialization.py"}


def test_nothing_is_ever_unpickled():
    pattern = re.compile(r"\bpickle\b|allow_pickle\s*=\s*True|\bmarshal\b|\bdill\b")
    for folder in ("server", "worker", "proto", "client"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if path.name.endswith("_pb2.py") or path.name.endswith("_pb2_grpc.py"):
                continue
            if str(path.relative_to(ROOT)) in CHECKPOINT_FILES:
                assert folder == "client"
                continue
            assert "_pickled" not in text or path.name in ("_serialization.py",
                                                           "serialization.py"), path
            for m in pattern.finditer(text):
                line = text[: m.start()].count("\n") + 1
                src = text.splitlines()[line - 1].strip()
                assert src.startswith("#") or "never" in src.lower() or "no pickle" in \
                    src.lower() or "__reduce" in src or "deepcopy" in src, \
                    f"{path.relative_to(ROOT)}:{line}: {src}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-s"]))
