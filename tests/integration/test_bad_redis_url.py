"""A bad --redis-url stops the gateway, the worker and `cluster up` at once with one line on
stderr that names the setting, and a non-zero exit: not redis-py's traceback, not a process
that starts and then fails at its first call. Run through the installed `remotegrad`
command, as an operator runs it; the password in a URL is not echoed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from procs import free_port

pytestmark = pytest.mark.integration

REMOTEGRAD = shutil.which("remotegrad", path=os.path.dirname(sys.executable))

BAD = [
    ("bogus://localhost:6379", "scheme"),            # no such scheme
    ("localhost:6379", "scheme"),                    # the scheme forgotten
    ("redis://:hunter2@localhost:notaport", "Port"),  # a typo in the port
    ("redis+sentinel://localhost:26379", "service"),  # sentinel without its service name
    ("redis+cluster://", "host:port"),                # cluster without a node
]


def _run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    assert REMOTEGRAD, "the remotegrad console script is not installed beside this Python"
    return subprocess.run([REMOTEGRAD, *argv], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)


def _check(done: subprocess.CompletedProcess, command: str, expected: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"remotegrad {command}: cannot start: --redis-url "), lines
    assert expected in lines[0], lines
    assert "hunter2" not in done.stderr + done.stdout


@pytest.mark.parametrize("url,expected", BAD)
@pytest.mark.parametrize("command", ["gateway", "worker"])
def test_a_bad_url_is_one_line_and_a_non_zero_exit(command, url, expected):
    done = _run(command, "--port", str(free_port()), "--redis-url", url)
    _check(done, command, expected)


def test_cluster_up_refuses_a_bad_url_before_starting_anything():
    url, expected = BAD[2]
    done = _run("cluster", "up", "--port", str(free_port()), "--workers", "1",
                "--redis-url", url)
    _check(done, "cluster", expected)
    assert "cluster ready" not in done.stdout


def test_the_environment_variable_is_checked_the_same_way():
    done = _run("gateway", "--port", str(free_port()),
                env={"REMOTEGRAD_REDIS_URL": "bogus://localhost:6379"})
    _check(done, "gateway", "scheme")
