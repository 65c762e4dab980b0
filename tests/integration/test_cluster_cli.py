"""`remotegrad cluster up`: prints the address once everything is healthy, serves the seed,
and on SIGTERM or Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from procs import free_port
from remotegrad.server.status import supervised
from remotegrad.server.supervisor import state_path


def _children(pid: int) -> set[int]:
    out = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out |= {int(c) for c in f.read().split()}
        except FileNotFoundError:  # a thread that has just ended
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.slow
def test_cluster_up_then_stop_leaves_nothing_running(sig):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "cluster", "up",
                             "--workers", "2", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and "ready at" not in line:
            line = proc.stdout.readline()
            assert line, "cluster up exited before it was ready"
        assert f"ready at 127.0.0.1:{port}" in line
        children = _children(proc.pid)
        assert len(children) == 4  # redis-server, gateway, two workers
        code = ("import remotegrad as torch\n"
                f"torch.connect('127.0.0.1:{port}')\n"
                "x = torch.ones(3, requires_grad=True)\n(x * x).sum().backward()\nprint(x.grad)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
        assert out.stdout.strip() == "tensor([2., 2., 2.])", out.stderr
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        assert not [c for c in children if _alive(c)], "cluster left processes running"
    finally:
        if proc.poll() is None:  # a failed assertion: stop the cluster the same clean way
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_cluster_killed_outright_leaves_nothing_running():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "cluster", "up",
                             "--workers", "1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and "ready at" not in line:
            line = proc.stdout.readline()
            assert line, "cluster up exited before it was ready"
        children = _children(proc.pid)
        assert len(children) == 3
        proc.kill()  # SIGKILL: no chance to clean up; the children must go by themselves
        proc.wait()
        end = time.monotonic() + 20
        while time.monotonic() < end and [c for c in children if _alive(c)]:
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)], "children outlived a killed cluster"
        # Its restart counts are left behind; `remotegrad status` ignores them (pid gone).
        assert os.path.exists(state_path(port))
        assert supervised(f"127.0.0.1:{port}") is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(state_path(port)):
            os.unlink(state_path(port))
