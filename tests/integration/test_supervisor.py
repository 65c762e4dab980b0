"""`remotegrad cluster up` keeps serving through crashes: one real `cluster up --workers 2`
on loopback ports, an SDK client process checking every gradient, and faults made by pid
(SIGKILL of a worker, of redis-server, of the gateway; SIGTERM of the gateway; a worker
killed each time it comes back). Every call must succeed, with its gradient right.

The figures each test prints (calls, failures, worst latency) are RELIABILITY.md's
"Faults through cluster up" table: `pytest -s tests/integration/test_supervisor.py`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from procs import free_port, wait_until
from procs import stop as stop_proc
from remotegrad.proto import registry
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.server.supervisor import state_path

pytestmark = pytest.mark.integration

# One SDK client: seed-style calls with a fresh x each time (no call is a cache hit), the
# gradient checked against 24 x^2, one JSON line per call; it stops when `stop` exists.
CLIENT = r"""
import json, os, random, sys, time
import remotegrad as torch
address, out, stop = sys.argv[1:4]
torch.connect(address)
rng = random.Random(7)
with open(out, "a", buffering=1) as f:
    end = time.monotonic() + 90
    while not os.path.exists(stop) and time.monotonic() < end:
        xs = [rng.uniform(-2, 2) for _ in range(8)]
        start, error = time.monotonic(), ""
        try:
            x = torch.tensor(xs, requires_grad=True)
            ((x * 2) ** 3).sum().backward()
            for got, v in zip(x.grad.tolist(), xs):
                want = 24 * v * v
                if abs(got - want) > 1e-4 * max(1.0, abs(want)):
                    error = f"wrong gradient {got} for x={v} (want {want})"
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
        f.write(json.dumps({"t": start, "latency": time.monotonic() - start,
                            "error": error}) + "\n")
        time.sleep(0.02)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> set[int]:
    out = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out |= {int(c) for c in f.read().split()}
        except FileNotFoundError:  # a thread that has just ended
            pass
    return out


@dataclass
class Up:
    proc: subprocess.Popen
    port: int
    log: Path
    redis_url: str  # from the file `cluster up` printed (it holds the password)
    metrics_port: int  # the gateway's; workers on the next ports

    def metric(self, name: str, port: int | None = None) -> float:
        """The sum of a Prometheus counter's samples (0 when absent)."""
        import urllib.request
        from prometheus_client.parser import text_string_to_metric_families
        url = f"http://127.0.0.1:{port or self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        return sum(s.value for f in text_string_to_metric_families(text)
                   for s in f.samples if s.name == name)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def state(self) -> dict:
        with open(state_path(self.port)) as f:
            return {c["name"]: c for c in json.load(f)["children"]}

    def pid(self, name: str) -> int:
        """The pid `cluster up` runs `name` under: a live child of it, by its state file."""
        pid = self.state()[name]["pid"]
        assert pid in _children(self.proc.pid) and _alive(pid), (name, pid)
        return pid

    def wait_new_pid(self, name: str, old: int, timeout: float = 30.0) -> int:
        wait_until(lambda: self.state()[name]["pid"] not in (None, old), f"{name} restarted",
                   timeout=timeout, procs=[self.proc])
        return self.pid(name)

    def workers(self) -> set[str]:
        with grpc.insecure_channel(self.address) as ch:
            st = pb_grpc.GatewayStub(ch).ClusterStatus(pb.ClusterStatusRequest(), timeout=2)
        return {w.address for w in st.workers}

    def health(self) -> str:
        with grpc.insecure_channel(self.address) as ch:
            try:
                answer = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=0.5)
            except grpc.RpcError as e:
                return e.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)

    def status_text(self) -> str:
        return subprocess.run([sys.executable, "-m", "remotegrad.server.cli", "status",
                               "--address", self.address], capture_output=True, text=True,
                              timeout=30).stdout


def _free_ports(n: int) -> int:
    """The first of n consecutive free loopback ports (the gateway's metrics, then each
    worker's)."""
    import socket
    for _ in range(50):
        first, socks = free_port(), []
        try:
            for p in range(first, first + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    log = tmp_path_factory.mktemp("cluster") / "cluster.log"
    port, metrics = free_port(), _free_ports(3)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "cluster", "up",
                                 "--workers", "2", "--port", str(port), "--heartbeat", "0.5",
                                 "--metrics-port", str(metrics)],
                                stdout=subprocess.PIPE, stderr=err, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline, line = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "ready at" not in line:
            line = proc.stdout.readline()
            assert line, f"cluster up exited before it was ready:\n{log.read_text()[-3000:]}"
        url_file = re.search(r"URL with its password in (\S+)\)", line).group(1)
        yield Up(proc, port, log, open(url_file).read().strip(), metrics)
        children = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        assert not [c for c in children if _alive(c)], "cluster up left processes running"
        assert not os.path.exists(state_path(port))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Load:
    """One SDK client process; `stop()` returns its calls."""

    def __init__(self, address: str, tmp: Path) -> None:
        self.out, self.stop_file = tmp / "calls.jsonl", tmp / "stop"
        self.proc = subprocess.Popen([sys.executable, "-c", CLIENT, address, str(self.out),
                                      str(self.stop_file)], stderr=subprocess.PIPE, text=True)

    def calls(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]

    def wait_calls(self, n: int, timeout: float = 30.0) -> None:
        wait_until(lambda: len(self.calls()) >= n, f"{n} calls", timeout=timeout,
                   procs=[self.proc])

    def stop(self) -> list[dict]:
        self.stop_file.touch()
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        assert self.proc.returncode == 0, err[-2000:]
        return self.calls()


def _report(what: str, calls: list[dict], fault_at: float) -> None:
    failed = [f'{c["error"]} (started {c["t"] - fault_at:+.3f}s from the fault, after '
              f'{c["latency"]:.3f}s)' for c in calls if c["error"]]
    near = [c["latency"] for c in calls if c["t"] >= fault_at - 1.0]
    print(f"\n{what}: {len(calls)} calls, {len(failed)} failed, worst latency around the "
          f"fault {max(near, default=0):.3f}s")
    assert not failed, failed[:5]
    assert calls and max(c["t"] for c in calls) > fault_at, "no call made after the fault"


def test_worker_sigkill_zero_failed_calls_and_it_rejoins(up, tmp_path):
    before = up.workers()
    assert len(before) == 2
    load = Load(up.address, tmp_path)
    try:
        load.wait_calls(10)
        old = up.pid("worker-0")
        fault_at = time.monotonic()
        os.kill(old, signal.SIGKILL)
        up.wait_new_pid("worker-0", old)
        # It rejoins under a new port; the dead one's registration expires.
        wait_until(lambda: len(w := up.workers()) == 2 and w != before, "worker rejoined",
                   timeout=30)
        print(f"\nworker restarted and back in the gateway's pool "
              f"{time.monotonic() - fault_at:.2f}s after the kill", end="")
        load.wait_calls(len(load.calls()) + 10)
    finally:
        calls = load.stop()
    _report("worker SIGKILL", calls, fault_at)
    print(f"gateway remotegrad_retries_total {up.metric('remotegrad_retries_total'):.0f}")
    assert up.state()["worker-0"]["restarts"] >= 1
    assert "worker-0" in up.status_text() and "signal SIGKILL" in up.status_text()


def test_redis_sigkill_zero_failed_calls_and_it_comes_back_on_its_port(up, tmp_path):
    import redis as redis_py
    load = Load(up.address, tmp_path)
    try:
        load.wait_calls(10)
        old = up.pid("redis")
        fault_at = time.monotonic()
        os.kill(old, signal.SIGKILL)
        up.wait_new_pid("redis", old)
        client = redis_py.Redis.from_url(up.redis_url)
        wait_until(lambda: client.ping(), "redis back on its port", timeout=20)
        print(f"\nredis answering on its port {time.monotonic() - fault_at:.2f}s after the "
              "kill", end="")
        # The workers register again with their next heartbeat.
        wait_until(lambda: len(registry.workers(client)) == 2,
                   "workers registered again", timeout=20)
        client.close()
        load.wait_calls(len(load.calls()) + 10)
    finally:
        calls = load.stop()
    _report("redis-server SIGKILL", calls, fault_at)
    print(f"gateway remotegrad_redis_errors_total "
          f"{up.metric('remotegrad_redis_errors_total'):.0f}")


def test_gateway_sigkill_calls_carried_by_the_sdk_retry(up, tmp_path):
    load = Load(up.address, tmp_path)
    try:
        load.wait_calls(10)
        old = up.pid("gateway")
        fault_at = time.monotonic()
        os.kill(old, signal.SIGKILL)
        up.wait_new_pid("gateway", old)
        wait_until(lambda: up.health() == "SERVING", "gateway back on its port", timeout=30)
        print(f"\ngateway SERVING again {time.monotonic() - fault_at:.2f}s after the kill",
              end="")
        load.wait_calls(len(load.calls()) + 10)
    finally:
        calls = load.stop()
    _report("gateway SIGKILL", calls, fault_at)


@pytest.mark.slow
def test_gateway_sigterm_goes_not_serving_before_it_stops_accepting(up, tmp_path):
    load = Load(up.address, tmp_path)
    try:
        load.wait_calls(10)
        old = up.pid("gateway")
        fault_at = time.monotonic()
        os.kill(old, signal.SIGTERM)
        wait_until(lambda: up.health() == "NOT_SERVING", "NOT_SERVING", timeout=5)
        seen = time.monotonic()
        # It keeps serving calls while it shows NOT_SERVING (DRAIN_NOTICE, 2 s).
        n = len(load.calls())
        load.wait_calls(n + 3, timeout=5)
        while up.health() == "NOT_SERVING" and time.monotonic() < seen + 10:
            time.sleep(0.05)
        closed = time.monotonic()
        assert closed - seen > 1.0, "the gateway stopped accepting at once"
        up.wait_new_pid("gateway", old)
        wait_until(lambda: up.health() == "SERVING", "gateway restarted", timeout=30)
        print(f"\nNOT_SERVING {seen - fault_at:.2f}s after SIGTERM, for {closed - seen:.2f}s; "
              f"SERVING again {time.monotonic() - fault_at:.2f}s after SIGTERM", end="")
        load.wait_calls(len(load.calls()) + 10)
    finally:
        calls = load.stop()
    # A call that meets the stop's first moment is CANCELLED by gRPC core
    # (grpc/grpc#41785): the SDK retries it, so none fails.
    _report("gateway SIGTERM", calls, fault_at)


@pytest.mark.slow
def test_worker_crash_loop_is_backed_off_counted_and_the_rest_serves(up, tmp_path):
    load = Load(up.address, tmp_path)
    gaps = []
    try:
        load.wait_calls(10)
        fault_at = time.monotonic()
        pid = up.pid("worker-1")
        for _ in range(3):  # each time it is back, at once: three exits in a row
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            pid = up.wait_new_pid("worker-1", pid)
            gaps.append(time.monotonic() - killed)
        wait_until(lambda: len(up.workers()) == 2, "two workers", timeout=30)
        load.wait_calls(len(load.calls()) + 10)
    finally:
        calls = load.stop()
    _report("worker crash loop", calls, fault_at)
    print(f"restart delays after each exit: {', '.join(f'{g:.2f}s' for g in gaps)}")
    # The backoff: 0.5 s, 1 s, 2 s (lower bounds; a busy machine only adds to them).
    assert gaps[1] >= 1.0 and gaps[2] >= 2.0, gaps
    assert up.state()["worker-1"]["crash_loops"] >= 1
    assert "worker-1 " in up.status_text() and "crash loop" in up.status_text()
    log = up.log.read_text()
    assert "worker-1" in log and "is crash-looping" in log
    assert up.state()["gateway"]["pid"] and up.state()["worker-0"]["pid"]


def test_a_worker_drains_within_its_stop_grace(redis_server):
    # Heartbeat 2 s would hold it 7 s in the registry wait alone; --stop-grace 3 caps all.
    proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "worker",
                             "--port", "0", "--redis-url", redis_server.url, "--heartbeat", "2",
                             "--stop-grace", "3"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    client = redis_server.client()
    try:
        wait_until(lambda: any(info.get("pid") == proc.pid
                               for info in registry.workers(client).values()),
                   "worker registered", procs=[proc])
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - sent
        print(f"\nworker stop after SIGTERM: {took:.2f}s (--stop-grace 3)")
        assert 1.4 <= took <= 4.5, took  # half the grace in the registry wait, then done
        assert not [a for a, info in registry.workers(client).items()
                    if info.get("pid") == proc.pid]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_health_command_exit_codes(up):
    def health(address: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "remotegrad.server.cli", "health",
                               "--address", address, "--timeout", "2"], capture_output=True,
                              text=True, timeout=30)
    ok = health(up.address)
    assert ok.returncode == 0 and ok.stdout.strip() == f"{up.address}: SERVING", ok
    down = health(f"127.0.0.1:{free_port()}")
    assert down.returncode == 1 and "UNAVAILABLE" in down.stdout, down


def _port_open(port: int) -> bool:
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_health_command_speaks_mutual_tls_as_the_tls_compose_file_runs_it(tmp_path):
    """deploy/compose.tls.yml's workers want client certificates; their healthcheck is
    `remotegrad health` with the container's own REMOTEGRAD_TLS_* variables."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "faults"))
    from certs import make_certs
    certs = make_certs(tmp_path / "certs")
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "worker",
                               "--port", str(port), "--tls-cert", str(certs["server.pem"]),
                               "--tls-key", str(certs["server.key"]), "--tls-ca",
                               str(certs["ca.pem"]), "--tls-client-auth", "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def health(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "remotegrad.server.cli", "health",
                               "--address", f"localhost:{port}", "--server-name", "localhost",
                               "--timeout", "2"], capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, **env))
    tls = dict(REMOTEGRAD_TLS_CA=str(certs["ca.pem"]))
    mutual = dict(tls, REMOTEGRAD_TLS_CERT=str(certs["server.pem"]),
                  REMOTEGRAD_TLS_KEY=str(certs["server.key"]))
    try:
        wait_until(lambda: _port_open(port), "worker listening", procs=[worker])
        ok = health(**mutual)
        assert ok.returncode == 0 and ok.stdout.strip() == f"localhost:{port}: SERVING", ok
        assert health(**tls).returncode == 1  # no client certificate: refused
        assert health().returncode == 1  # plaintext to a TLS port
    finally:
        stop_proc(worker)
