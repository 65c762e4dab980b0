"""Issue 15, item 13: a gateway without tokens serves anyone who reaches it as the default
tenant, so it listens on loopback only: on any other address it refuses to start, unless
the operator says --allow-anonymous true. (Before, `--host 0.0.0.0` without tokens served
every local network; the compose file published it so.)
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from procs import PY, free_port, stop, wait_until
from sectools import _serving, env

pytestmark = pytest.mark.integration


def _gateway(*args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "gateway", "--port", str(port),
                             "--stop-grace", "1", *args], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, port


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_no_tokens_means_loopback_only(host):
    proc, port = _gateway("--host", host)
    try:
        if host == "0.0.0.0":
            _, err = proc.communicate(timeout=60)
            assert proc.returncode != 0
            assert "no tokens" in err and "REMOTEGRAD_TOKENS" in err, err[-2000:]
        else:
            wait_until(lambda: _serving(f"127.0.0.1:{port}"), "gateway", timeout=60,
                       procs=[proc])
    finally:
        stop(proc)


@pytest.mark.parametrize("extra", [("--tokens", "tok-exposure-0123=alice"),
                                   ("--allow-anonymous", "true")])
def test_a_public_gateway_needs_tokens_or_an_explicit_opt_in(extra):
    proc, port = _gateway("--host", "0.0.0.0", *extra)
    try:
        wait_until(lambda: _serving(f"127.0.0.1:{port}"), "gateway", timeout=60, procs=[proc])
    finally:
        stop(proc)
        err = proc.stderr.read()
    assert ("every caller is the default tenant" in err) == ("--allow-anonymous" in extra)


def test_cluster_up_on_a_public_host_without_tokens_does_not_start():
    out = subprocess.run([sys.executable, "-m", "remotegrad.server.cli", "cluster", "up",
                          "--workers", "1", "--host", "0.0.0.0", "--port", str(free_port())],
                         capture_output=True, text=True, timeout=120, env=env())
    assert out.returncode != 0 and "no tokens" in out.stderr, out.stderr[-2000:]
    assert "ready at" not in out.stdout
