"""Issue 15, items 1, 2 and 14 through `remotegrad cluster up`: the cluster it starts is
closed by default. Its workers take calls from its gateway only (a worker secret generated
for the cluster), its Redis needs a generated password and listens on a unix socket in a
0700 folder (no TCP port), no secret or token is in any child's argv (ps), restarted
children get the same secrets, and workers bind the advertised host, not --host (so that
`--host 127.0.0.2` serves).

Before: workers took any caller as any tenant, Redis listened on TCP with no password
(its URL printed in full), and with --host 127.0.0.2 the workers bound 127.0.0.2 while
registering 127.0.0.1: the cluster printed "ready" and failed every call.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

from procs import free_port, wait_until
from remotegrad.proto import keys, registry
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.peer import SECRET_KEY
from remotegrad.server.supervisor import state_path
from sectools import as_tenant, code_of, env, sum_request, value

pytestmark = pytest.mark.integration

TOKEN, TENANT = "tok-cluster-up-0123456789", "alice"
HOST = "127.0.0.2"  # the clients' side; workers stay on 127.0.0.1


class Up:
    def __init__(self, proc: subprocess.Popen, port: int, url_file: str, line: str) -> None:
        self.proc, self.port, self.url_file, self.ready_line = proc, port, url_file, line

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def pids(self) -> dict[str, int]:
        with open(state_path(self.port)) as f:
            return {c["name"]: c["pid"] for c in json.load(f)["children"]}

    def redis(self, password: bool = True):
        import redis as redis_py
        url = open(self.url_file).read().strip()
        if not password:
            url = re.sub(r"//:[^@]*@", "//", url)
        return redis_py.Redis.from_url(url, socket_timeout=5)

    def worker_addresses(self) -> list[str]:
        r = self.redis()
        try:
            return sorted(registry.workers(r))
        finally:
            r.close()


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e]
    return {k.decode(): v.decode(errors="replace") for k, v in items}


def _secret_of(up: Up, child: str) -> str | None:
    """A child's REMOTEGRAD_WORKER_SECRET, None while it is between two lives."""
    try:
        return _environ(up.pids()[child]).get("REMOTEGRAD_WORKER_SECRET")
    except (ProcessLookupError, FileNotFoundError, KeyError, TypeError):
        return None


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    log = tmp_path_factory.mktemp("cluster-up") / "cluster.log"
    port = free_port()
    # --tokens on the command line on purpose: it must reach no child's argv.
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "remotegrad.server.cli", "cluster", "up", "--workers", "2",
             "--host", HOST, "--port", str(port), "--heartbeat", "0.5", "--stop-grace", "2",
             "--tokens", f"{TOKEN}={TENANT}"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env())
    try:
        deadline, line = time.monotonic() + 90, ""
        while time.monotonic() < deadline and "ready at" not in line:
            line = proc.stdout.readline()
            assert line, f"cluster up exited before it was ready:\n{log.read_text()[-3000:]}"
        assert f"ready at {HOST}:{port}" in line, line
        found = re.search(r"URL with its password in (\S+)\)", line)
        assert found, line
        yield Up(proc, port, found.group(1), line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert not os.path.exists(os.path.dirname(found.group(1))), "Redis folder left behind"


def _sdk_call(address: str) -> str:
    code = ("import remotegrad as torch\n"
            f"torch.connect('{address}', token='{TOKEN}')\n"
            "x = torch.ones(3, requires_grad=True)\n(x * x).sum().backward()\nprint(x.grad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=90, env=env())
    assert out.stdout.strip() == "tensor([2., 2., 2.])", out.stderr[-2000:]
    return out.stdout


def _execute(address: str, metadata=()) -> float:
    with grpc.insecure_channel(address) as ch:
        return value(pb_grpc.WorkerStub(ch).Execute(sum_request(np.ones(5, np.float32)),
                                                    timeout=20, metadata=metadata))


def _assert_workers_closed(up: Up, secret: str) -> None:
    addresses = up.worker_addresses()
    assert len(addresses) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
    for address in addresses:
        for md in ((), (("x-tenant", TENANT),), ((SECRET_KEY, "not-the-secret-0123456789"),)):
            code, details = code_of(lambda a=address, md=md: _execute(a, md))
            assert code == "UNAUTHENTICATED" and "gateway" in details, (address, md, code)
        assert _execute(address, ((SECRET_KEY, secret),)) == 5.0  # the gateway's way in


def test_workers_refuse_every_caller_but_their_gateway(up):
    _sdk_call(up.address)  # the cluster serves on 127.0.0.2 (--host), workers on loopback
    secret = _environ(up.pids()["gateway"])["REMOTEGRAD_WORKER_SECRET"]
    assert len(secret) >= 32
    for name, pid in up.pids().items():
        if name.startswith("worker"):
            assert _environ(pid)["REMOTEGRAD_WORKER_SECRET"] == secret, name
    _assert_workers_closed(up, secret)


def test_no_secret_password_or_token_in_any_argv(up):
    pids = up.pids()
    gateway_env = _environ(pids["gateway"])
    secret = gateway_env["REMOTEGRAD_WORKER_SECRET"]
    url = gateway_env["REMOTEGRAD_REDIS_URL"]
    password = re.search(r"//:([^@]+)@", url).group(1)
    assert len(password) >= 32
    assert gateway_env["REMOTEGRAD_TOKENS"] == f"{TOKEN}={TENANT}"
    for name, pid in pids.items():
        argv = _cmdline(pid)
        for secret_text in (secret, password, TOKEN):
            assert secret_text not in argv, (name, argv)
        if name.startswith("worker"):
            assert "REMOTEGRAD_TOKENS" not in _environ(pid), name  # only the gateway's
            assert f"--host {HOST}" not in argv, argv
    assert up.redis().ping()
    # The ready line names no password either (it went to a terminal or a log).
    assert password not in up.ready_line and secret not in up.ready_line


def test_redis_is_private_and_needs_its_password(up):
    import redis as redis_py
    folder = os.path.dirname(up.url_file)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for name in ("redis.conf", "url"):
        assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == 0o600
    anonymous = up.redis(password=False)
    with pytest.raises(redis_py.AuthenticationError):
        anonymous.hset(keys.WORKER_RECORDS, "127.0.0.1:1", b"{}")  # a forged registration
    anonymous.close()
    r = up.redis()
    assert r.config_get("port") == {"port": "0"}  # no TCP listener at all
    r.close()


def test_restarted_children_keep_the_same_secrets(up):
    import redis as redis_py
    before = up.pids()
    secret = _environ(before["gateway"])["REMOTEGRAD_WORKER_SECRET"]
    for name in ("worker-0", "redis"):
        os.kill(before[name], signal.SIGKILL)
        wait_until(lambda n=name: up.pids()[n] not in (None, before[n]), f"{name} restarted",
                   timeout=60, procs=[up.proc])
    wait_until(lambda: up.redis().ping(), "redis back on its socket", timeout=30)
    with pytest.raises(redis_py.AuthenticationError):
        up.redis(password=False).ping()
    # (read again if the child restarted once more between the state file and /proc)
    wait_until(lambda: _secret_of(up, "worker-0") == secret, "the restarted worker's secret",
               timeout=30, procs=[up.proc])
    wait_until(lambda: len(up.worker_addresses()) == 2, "workers registered again",
               timeout=60, procs=[up.proc])
    _assert_workers_closed(up, secret)
    # The gateway (same secret) still reaches them: SDK calls work.
    stub = pb_grpc.GatewayStub(grpc.insecure_channel(up.address))
    wait_until(lambda: value(stub.Compute(sum_request(np.ones(7, np.float32)),
                                          metadata=as_tenant(TOKEN), timeout=10)) == 7.0,
               "a call through the gateway", timeout=60)
    _sdk_call(up.address)
