"""Every console command from a plain `pip install remotegrad` (no extras): it works, or it
says in one line which extra it needs.

The extras' modules are made unimportable for the commands (and every process they start)
by a sitecustomize on PYTHONPATH that puts None in sys.modules for them, which is what
Python's import system and importlib.util.find_spec both read as "not installed".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from procs import free_port

pytestmark = pytest.mark.integration

# The optional dependencies of the `load`, `gpu` and `test` extras.
EXTRAS = ("locust", "gevent", "geventhttpclient", "matplotlib", "py_spy", "cupy", "torch",
          "pytest", "hypothesis", "yaml", "sklearn")


@pytest.fixture(scope="module")
def plain_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("plain")
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in EXTRAS))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    check = subprocess.run([sys.executable, "-c", "import locust"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode != 0 and "ModuleNotFoundError" in check.stderr  # the trick holds
    return env


def _remotegrad(env, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remotegrad.server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_loadtest_without_the_load_extra_says_what_to_install(plain_env):
    for args in (["--target", "127.0.0.1:1", "--duration", "1"],
                 ["--spawn-cluster", "--workers", "1", "--duration", "1"]):
        out = _remotegrad(plain_env, "loadtest", *args)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert "pip install 'remotegrad[load]'" in lines[0] and "locust" in lines[0]


def test_every_command_helps_without_extras(plain_env):
    for cmd in ([], ["gateway"], ["worker"], ["cluster", "up"], ["status"], ["health"],
                ["loadtest"]):
        out = _remotegrad(plain_env, *cmd, "--help")
        assert out.returncode == 0 and "usage: remotegrad" in out.stdout, (cmd, out.stderr)


@pytest.mark.slow
def test_cluster_status_and_health_run_without_extras(plain_env, tmp_path):
    port = free_port()
    log = tmp_path / "cluster.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "cluster", "up",
                                 "--workers", "1", "--port", str(port), "--metrics-port", "0"],
                                env=plain_env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        deadline, line = time.monotonic() + 90, ""
        while time.monotonic() < deadline and "ready at" not in line:
            line = proc.stdout.readline()
            assert line, f"cluster up exited:\n{log.read_text()[-3000:]}"
        health = _remotegrad(plain_env, "health", "--address", f"127.0.0.1:{port}")
        assert health.returncode == 0, health.stderr
        status = _remotegrad(plain_env, "status", "--address", f"127.0.0.1:{port}")
        assert status.returncode == 0 and re.search(r"127\.0\.0\.1:\d+", status.stdout), \
            status.stdout + status.stderr
        sdk = subprocess.run([sys.executable, "-c", (
            "import remotegrad as t; t.connect('127.0.0.1:%d'); x = t.ones(3, "
            "requires_grad=True); (x * x).sum().backward(); print(x.grad.tolist())") % port],
            env=plain_env, capture_output=True, text=True, timeout=120)
        assert sdk.stdout.strip() == "[2.0, 2.0, 2.0]", sdk.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
