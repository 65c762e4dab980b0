"""Kept tensors (parameters, optimiser state) survive what a shared store does to caches.

Each test runs a real `remotegrad cluster up` (redis-server, gateway, two workers) on
loopback, trains a 32x32 linear model with the SDK in this process, and checks every
step's loss against the same loop in PyTorch. Faults are made by pid: SIGKILL of the
worker that holds the parameters, SIGKILL of redis-server (`cluster up` starts it again,
empty), another tenant filling Redis, the whole cluster stopped and started again.

The figures each test prints are RELIABILITY.md's "Durability" table:
`pytest -s tests/integration/test_durability.py`.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from procs import free_port, wait_until

pytestmark = pytest.mark.integration

pt = pytest.importorskip("torch")
import remotegrad as rg  # noqa: E402
from remotegrad.proto import codec, keys  # noqa: E402

TOKENS = "train-token-0123456789=train,other-token-0123456789=other"
N = 32


class Up:
    """One `cluster up` process; its children by the state file it writes."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path, redis_url: str) -> None:
        self.proc, self.port, self.log, self.redis_url = proc, port, log, redis_url

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pid(self, name: str) -> int:
        from remotegrad.server.supervisor import state_path
        with open(state_path(self.port)) as f:
            return {c["name"]: c for c in json.load(f)["children"]}[name]["pid"]

    def worker_pid(self, address: str) -> int:
        """The pid of the worker child listening on `address` (host:port)."""
        port = address.rsplit(":", 1)[1]
        for i in range(8):
            try:
                pid = self.pid(f"worker-{i}")
            except KeyError:
                break
            if pid and f":{int(port):04X}" in _listening(pid):
                return pid
        raise AssertionError(f"no worker child listens on {address}")

    def redis(self):
        import redis
        return redis.Redis.from_url(self.redis_url)


def _listening(pid: int) -> str:
    """The local addresses of `pid`'s listening TCP sockets, as /proc/net/tcp writes them."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    out.append(cols[1])
    return " ".join(out)


@contextmanager
def cluster_up(tmp: Path, *args: str, port: int | None = None, then_local: bool = True):
    port = port or free_port()
    log = tmp / f"cluster-{port}-{time.monotonic_ns()}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", REMOTEGRAD_TOKENS=TOKENS)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "cluster", "up",
                                 "--workers", "2", "--port", str(port), "--heartbeat", "0.5",
                                 "--local-max-nodes", "0", *args],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    try:
        deadline, line = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "ready at" not in line:
            line = proc.stdout.readline()
            assert line, f"cluster up exited before it was ready:\n{log.read_text()[-3000:]}"
        url_file = re.search(r"URL with its password in (\S+)\)", line).group(1)
        up = Up(proc, port, log, open(url_file).read().strip())
        wait_until(lambda: len(_workers(up)) == 2, "two workers", procs=[proc])
        yield up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if then_local:
            rg.connect("local")


def _workers(up: Up) -> list[str]:
    import grpc

    from remotegrad.proto import remotegrad_pb2 as pb
    from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
    with grpc.insecure_channel(up.address) as ch:
        st = pb_grpc.GatewayStub(ch).ClusterStatus(
            pb.ClusterStatusRequest(), timeout=2,
            metadata=(("authorization", "Bearer train-token-0123456789"),))
    return [w.address for w in st.workers]


class Twin:
    """The same linear model trained with remotegrad and with PyTorch, step by step."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        w0 = (rng.standard_normal((N, N)) * 0.1).astype(np.float32)
        self.rng = rng
        self.w = rg.tensor(w0, requires_grad=True)
        self.w_pt = pt.tensor(w0, requires_grad=True)
        self.opt = rg.optim.SGD([self.w], lr=0.1, momentum=0.9)
        self.opt_pt = pt.optim.SGD([self.w_pt], lr=0.1, momentum=0.9)
        self.target = rng.standard_normal((N, N)).astype(np.float32)
        self.losses: list[float] = []

    def step(self) -> float:
        x = self.rng.standard_normal((16, N)).astype(np.float32)
        y = x @ self.target
        loss = ((rg.tensor(x) @ self.w - rg.tensor(y)) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        got = loss.item()
        loss_pt = ((pt.tensor(x) @ self.w_pt - pt.tensor(y)) ** 2).mean()
        self.opt_pt.zero_grad()
        loss_pt.backward()
        self.opt_pt.step()
        want = loss_pt.item()
        assert got == pytest.approx(want, rel=1e-5), f"step {len(self.losses)}: {got} != {want}"
        self.losses.append(got)
        return got

    def check_weights(self) -> None:
        np.testing.assert_allclose(self.w.detach().numpy(), self.w_pt.detach().numpy(),
                                   rtol=1e-5, atol=1e-6)


def _other_tenant_uploads(up: Up, count: int, mib: int = 16) -> list[str]:
    """Another tenant streams up `count` random tensors of `mib` MiB; the errors it got."""
    from remotegrad._remote import RemoteSession
    session = RemoteSession(up.address, token="other-token-0123456789", timeout=60)
    errors = []
    rng = np.random.default_rng(1)
    try:
        for _ in range(count):
            a = rng.standard_normal(mib << 18).astype(np.float32)
            try:
                session.upload([codec.encode_array(a)])
            except Exception as e:  # noqa: BLE001  (what it gets is the test's subject)
                errors.append(f"{type(e).__name__}: {e}")
    finally:
        session.close()
    return errors


def _holder(up: Up) -> int:
    """The pid of the worker that computed the last step (it holds the parameters)."""
    return up.worker_pid(rg._session.current().holder)


def _kept_bytes(up: Up, tenant: str = "train") -> int:
    return int(up.redis().hget(keys.kept_ledger_key(tenant), "bytes") or 0)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def _keep_big(up: Up, mib: int, seed: int):
    """As tenant `other`: keep 2 * a, a of `mib` MiB, in the cluster (raw gRPC)."""
    import grpc

    from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
    from remotegrad.proto.codec import WireNode
    a = np.random.default_rng(seed).standard_normal(mib << 18).astype(np.float32)
    h = codec.array_hash(a)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": a.shape}),
             WireNode(1, "mul", (0, 0), {})]
    req = codec.encode_request(nodes, [codec.encode_array(a, h)], [1])
    req.keep.append(1)
    with grpc.insecure_channel(up.address, options=[("grpc.max_send_message_length", -1),
                                                    ("grpc.max_receive_message_length", -1)]
                               ) as ch:
        return pb_grpc.GatewayStub(ch).Compute(
            req, timeout=60, metadata=(("authorization", "Bearer other-token-0123456789"),))


def _train(up: Up) -> Twin:
    session = rg.connect(up.address, token="train-token-0123456789")
    _watch(session)
    return Twin()


def _watch(session) -> None:
    """Note, on the session, the worker that answered its last call keeping results
    (the one holding the parameters): observed, the call itself is unchanged."""
    compute = session.compute

    def watched(req):
        resp = compute(req)
        if req.keep:
            session.holder = resp.worker
        return resp
    session.compute = watched


@pytest.mark.slow
def test_evicted_and_expired_cache_and_a_dead_holder_lose_no_parameter(tmp_path):
    """The issue's reproductions together: a 128 MB Redis and --tensor-ttl 3; three
    steps, another tenant uploads 12 x 16 MiB, 5 s idle, and the worker that held the
    parameters is SIGKILLed: the next steps read the durable copies."""
    with cluster_up(tmp_path, "--redis-maxmemory", "128mb", "--tensor-ttl", "3") as up:
        twin = _train(up)
        for _ in range(3):
            twin.step()
        assert _other_tenant_uploads(up, 12) == []  # the cache evicts; nothing is refused
        time.sleep(5)
        _kill(_holder(up))
        start = time.monotonic()
        for _ in range(3):
            twin.step()
        twin.check_weights()
        print(f"\n[durability] evicted+expired cache, holder SIGKILLed: {len(twin.losses)} "
              f"steps, 0 failures, first steps after the kill {time.monotonic() - start:.2f}s")


@pytest.mark.slow
def test_sigkill_of_the_holder_mid_training(tmp_path):
    """The worker that holds the parameters is SIGKILLed between two steps, three times:
    every step succeeds and every loss is PyTorch's."""
    with cluster_up(tmp_path) as up:
        twin = _train(up)
        worst = 0.0
        for _round in range(3):
            for _ in range(4):
                twin.step()
            # the other worker is up (the one killed before came back): one dies at a time
            wait_until(lambda: len(_workers(up)) == 2, "two workers", procs=[up.proc])
            _kill(_holder(up))
            start = time.monotonic()
            twin.step()
            worst = max(worst, time.monotonic() - start)
        twin.check_weights()
        # What the SDK dropped was released: the durable copies are those of what it still
        # holds (the parameter, its gradient, the momentum) and of what it dropped since
        # its last call (told with the next one), not one per step (16 steps: 40+).
        gc.collect()  # (a node in a reference cycle is released when Python collects it)
        twin.step()
        wait_until(lambda: _kept_bytes(up) <= 6 * N * N * 4, "releases settled", timeout=5)
        copies = len(list(up.redis().scan_iter(match=f"{keys.PREFIX}:kept:train:*")))
        assert 2 <= copies <= 6, copies
        print(f"\n[durability] holder SIGKILLed 3 times: {len(twin.losses)} steps, 0 failures, "
              f"slowest step after a kill {worst:.2f}s; durable copies left: {copies} "
              f"({_kept_bytes(up)} bytes)")


@pytest.mark.slow
def test_a_holder_dead_before_its_copies_were_written(tmp_path):
    """Redis lets the durable copies' keys be read but not written (an ACL: their writes
    fail, all else works), so two steps' parameters exist only in the worker that
    computed them (and, as lineage, in the gateway: never their bytes); that worker is
    SIGKILLed, twice: each time the next step computes the lost parameters again from
    their producing requests on the other worker (the second time, two steps back), with
    PyTorch's losses."""
    with cluster_up(tmp_path) as up:
        twin = _train(up)
        for _ in range(3):
            twin.step()
        r = up.redis()
        p = keys.PREFIX
        r.execute_command("ACL", "SETUSER", "default", "resetkeys", f"~{p}:[^k]*",
                          f"~{p}:kept-*", f"%R~{p}:kept:*")
        try:
            twin.step()  # its parameters' copies cannot be written
            _kill(_holder(up))
            twin.step()  # computed again on the other worker; its own copies fail too
            wait_until(lambda: len(_workers(up)) == 2, "two workers", procs=[up.proc])
            _kill(_holder(up))
            twin.step()
        finally:
            r.execute_command("ACL", "SETUSER", "default", "allkeys")
        for _ in range(2):
            twin.step()
        twin.check_weights()
        recovered = up.log.read_text().count("computed again on")
        assert recovered >= 2, recovered
        print(f"\n[durability] holder dead before its copies were written, twice: "
              f"{len(twin.losses)} steps, 0 failures, {recovered} calls answered after "
              "computing their lost inputs again from lineage")


def test_kept_results_are_read_back_before_their_copies_are_written(tmp_path):
    """A tenant reads its own kept results at once: with Redis refusing the durable
    copies' keys (their writes never land), the parameters a step kept are present to
    HasTensors and their values come back, from the worker that holds them, as
    PyTorch's; FetchTensor of the name answers their bytes from the holder too."""
    from remotegrad.proto import remotegrad_pb2 as pb
    with cluster_up(tmp_path) as up:
        twin = _train(up)
        twin.step()
        r = up.redis()
        p = keys.PREFIX
        r.execute_command("ACL", "SETUSER", "default", "resetkeys", f"~{p}:[^k]*",
                          f"~{p}:kept-*")
        try:
            twin.step()  # the new parameters' copies cannot be written
            session = rg._session.current()
            name = twin.w._node.hash
            assert name, "the parameter is kept in the cluster, by name"
            present = session._stub.HasTensors(pb.HasTensorsRequest(hashes=[name]),
                                               timeout=10, metadata=session._metadata)
            assert list(present.present) == [True]
            chunks = list(session._stub.FetchTensor(pb.FetchTensorRequest(hash=name),
                                                    timeout=10, metadata=session._metadata))
            value = np.frombuffer(b"".join(c.data for c in chunks), chunks[0].dtype)
            np.testing.assert_allclose(value.reshape(N, N), twin.w_pt.detach().numpy(),
                                       rtol=1e-5, atol=1e-6)
            assert chunks[0].hash == name
            twin.check_weights()  # read through a graph: from the holder
        finally:
            r.execute_command("ACL", "SETUSER", "default", "allkeys")


def test_a_holder_dead_before_its_copies_were_written_is_computed_again(tmp_path):
    """The copies' keys read-only, the holder SIGKILLed before its copies landed: the
    lost parameters are computed again from their producing request on the other worker
    (whose inputs, released by the SDK meanwhile, keep their copies until then), which
    then holds them; the next steps go there, with PyTorch's losses."""
    with cluster_up(tmp_path) as up:
        twin = _train(up)
        for _ in range(3):
            twin.step()
        r = up.redis()
        p = keys.PREFIX
        r.execute_command("ACL", "SETUSER", "default", "resetkeys", f"~{p}:[^k]*",
                          f"~{p}:kept-*", f"%R~{p}:kept:*")
        try:
            twin.step()  # its parameters' copies cannot be written
            _kill(_holder(up))
            twin.step()  # computed again on the other worker
        finally:
            r.execute_command("ACL", "SETUSER", "default", "allkeys")
        for _ in range(2):
            twin.step()
        twin.check_weights()
        again = up.log.read_text().count("computing it again")
        assert again >= 1, again
        print(f"\n[durability] holder dead before its copies were written, no bytes in the "
              f"gateway: {len(twin.losses)} steps, 0 failures, {again} kept tensors "
              "computed again from their lineage")


@pytest.mark.slow
def test_redis_restarted_empty_mid_training(tmp_path):
    """redis-server is SIGKILLed (cluster up starts it again, empty): the holder still has
    the parameters, and the next steps persist them again (a dead holder after that
    loses nothing either)."""
    with cluster_up(tmp_path) as up:
        twin = _train(up)
        for _ in range(4):
            twin.step()
        old = up.pid("redis")
        _kill(old)
        wait_until(lambda: up.pid("redis") not in (None, old) and up.redis().ping(),
                   "redis-server restarted", procs=[up.proc])
        assert up.redis().dbsize() < 10  # empty but for what came back since
        start = time.monotonic()
        for _ in range(4):
            twin.step()
        after = time.monotonic() - start
        _kill(_holder(up))
        for _ in range(2):
            twin.step()
        twin.check_weights()
        print(f"\n[durability] redis restarted empty: {len(twin.losses)} steps, 0 failures, "
              f"4 steps after the restart {after:.2f}s")


@pytest.mark.slow
def test_another_tenant_filling_redis_gets_resource_exhausted(tmp_path):
    """Another tenant uploads 12 x 16 MiB into a 128 MB Redis and keeps 16 MiB tensors past
    its 40 MiB quota: its third is refused (RESOURCE_EXHAUSTED); the training tenant's
    parameters survive it, and the death of their holder after it."""
    import grpc
    with cluster_up(tmp_path, "--redis-maxmemory", "128mb",
                    "--kept-quota-bytes", str(40 << 20)) as up:
        twin = _train(up)
        for _ in range(3):
            twin.step()
        assert _other_tenant_uploads(up, 12) == []
        codes = []
        for seed in range(3):
            try:
                _keep_big(up, 16, seed)
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
                detail = e.details()
        assert codes == ["OK", "OK", "RESOURCE_EXHAUSTED"], codes
        assert "quota" in detail and "other" in detail, detail
        _kill(_holder(up))
        for _ in range(3):
            twin.step()
        twin.check_weights()
        print(f"\n[durability] other tenant over its quota: {codes}; training "
              f"{len(twin.losses)} steps, 0 failures")


@pytest.mark.slow
def test_stop_everything_and_restart_names_what_is_gone(tmp_path):
    """The whole cluster is stopped and started again on the same port (its Redis has no
    persistence): the session's next step raises MissingTensorsError naming the
    parameter (name, dtype, shape) as gone, and reading the parameter does too; never a
    value."""
    port = free_port()
    with cluster_up(tmp_path, port=port, then_local=False) as up:
        twin = _train(up)
        for _ in range(3):
            twin.step()
        name = twin.w._node.hash
        assert name is not None and twin.w._node.value is None  # held by the cluster only
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(timeout=40) == 0
    with cluster_up(tmp_path, port=port):  # the same session: it reconnects by itself
        with pytest.raises(rg._session.MissingTensorsError) as err:
            twin.step()
        assert name in str(err.value), str(err.value)
        assert f"{name} (float32 [{N}, {N}])" in str(err.value) and "gone" in str(err.value)
        with pytest.raises(rg._session.MissingTensorsError) as err:
            twin.w.detach().numpy()
        assert name in str(err.value)
        print(f"\n[durability] restarted cluster: {str(err.value)[:160]}")
