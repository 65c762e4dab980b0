"""A stuck worker (SIGSTOP: alive, its connections open, answering nothing) under a real
`remotegrad cluster up --workers 2`: the gateway hedges the calls it routed there to the
other worker, takes the stuck one out of routing after consecutive misses, long before its
registry key expires (the heartbeat is 10 s here, so the key lives 30 s), and brings it back
by a health probe once it answers again (SIGCONT). An SDK client checks every gradient.

`pytest -s` prints the figures of RELIABILITY.md's row for this fault.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from test_supervisor import Load, Up, _alive, _children, _free_ports, _report

from procs import free_port, wait_until
from remotegrad.proto import registry

pytestmark = pytest.mark.integration


@pytest.fixture
def up(tmp_path_factory):
    log = tmp_path_factory.mktemp("cluster") / "cluster.log"
    port, metrics = free_port(), _free_ports(3)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "cluster", "up",
                                 "--workers", "2", "--port", str(port), "--heartbeat", "10",
                                 "--local-max-nodes", "0", "--metrics-port", str(metrics)],
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
        assert proc.wait(timeout=60) == 0
        assert not [c for c in children if _alive(c)], "cluster up left processes running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _worker_ok_calls(up: Up, index: int) -> float:
    """Execute calls worker `index` answered (its metrics port follows the gateway's)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families
    url = f"http://127.0.0.1:{up.metrics_port + 1 + index}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "remotegrad_calls_total" and s.labels.get("method") == "Execute"
               and s.labels.get("code") == "OK")


def test_stuck_worker_is_hedged_left_out_and_brought_back(up, tmp_path):
    import redis as redis_py
    both = up.workers()
    assert len(both) == 2
    load = Load(up.address, tmp_path)
    pid, stopped = up.pid("worker-0"), False
    try:
        load.wait_calls(30)  # the gateway has seen enough answers to derive a hedge delay
        assert _worker_ok_calls(up, 0) > 0, "worker-0 took no calls before the fault"
        os.kill(pid, signal.SIGSTOP)
        stopped, fault_at = True, time.monotonic()
        wait_until(lambda: len(up.workers()) == 1, "stuck worker out of routing", timeout=20)
        out_after = time.monotonic() - fault_at
        (stuck,) = both - up.workers()
        registered = stuck in registry.workers(redis_py.Redis.from_url(up.redis_url))
        assert registered, "the registry dropped it first: not the gateway's own observation"
        calls_out = len(load.calls())
        load.wait_calls(calls_out + 30)  # served by the other worker alone meanwhile
        os.kill(pid, signal.SIGCONT)
        stopped, resumed_at = False, time.monotonic()
        wait_until(lambda: up.workers() == both, "worker back in routing", timeout=20)
        back_after = time.monotonic() - resumed_at
        served = _worker_ok_calls(up, 0)
        wait_until(lambda: _worker_ok_calls(up, 0) > served, "calls on it again", timeout=20)
        load.wait_calls(len(load.calls()) + 10)
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        calls = load.stop()
    print(f"\nworker SIGSTOP: out of routing {out_after:.2f}s after the stop (its registry "
          f"key still there); back {back_after:.2f}s after SIGCONT; gateway hedges "
          f"{up.metric('remotegrad_hedges_total'):.0f}, workers taken out "
          f"{up.metric('remotegrad_worker_stuck_total'):.0f}", end="")
    _report("worker SIGSTOP", calls, fault_at)
    worst = max(c["latency"] for c in calls if c["t"] >= fault_at - 1.0)
    assert worst < 5.0, f"a call took {worst:.2f}s: not hedged"
    assert up.metric("remotegrad_hedges_total") >= 1
    assert up.metric("remotegrad_worker_stuck_total") >= 1
