"""`remotegrad loadtest` end to end, in short bounded runs on loopback: the summary, the
HTML report and the chart are written; closed and open loop; a spawned cluster is stopped."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

import pytest

from remotegrad.proto import keys

# Only look for Locust: importing it monkey-patches this whole test process with gevent,
# which deadlocks the threads and gRPC channels of every test that runs after it.
for _name in ("locust", "matplotlib"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(f"{_name} is not installed (the `load` extra)", allow_module_level=True)

pytestmark = pytest.mark.integration


def _loadtest(tmp_path, *args, timeout=150):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "remotegrad.server.cli", "loadtest",
                           "--out", str(out), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, out


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_closed_loop_seed_writes_table_report_and_chart(cluster, tmp_path):
    stdout, out = _loadtest(tmp_path, "--target", cluster.address, "--users", "2",
                            "--duration", "2", "--mix", "seed")
    assert "p99 ms" in stdout and "status codes: OK=" in stdout
    total = _summary(out)["rows"][-1]
    assert total["calls"] > 0 and total["failures"] == 0
    assert "<html" in (out / "report.html").read_text()[:2000].lower()
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_repeats_are_cache_hits(cluster, tmp_path):
    _, out = _loadtest(tmp_path, "--target", cluster.address, "--users", "1",
                       "--duration", "1.5", "--mix", "repeat")
    s = _summary(out)
    assert s["rows"][-1]["failures"] == 0
    assert s["rows"][-1]["hit_ratio"] > 0.5
    assert s["cluster"]["cache_hits"] > 0


def test_open_loop_keeps_the_arrival_rate(cluster, tmp_path):
    _, out = _loadtest(tmp_path, "--target", cluster.address, "--users", "1",
                       "--duration", "2", "--mix", "seed", "--rate", "20")
    calls = _summary(out)["rows"][-1]["calls"]
    assert 30 <= calls <= 41  # 20/s for 2 s: the schedule, not the cluster, sets the count


def test_non_loopback_target_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "remotegrad.server.cli", "loadtest",
                           "--target", "203.0.113.7:50051", "--duration", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "non-loopback" in proc.stderr


@pytest.mark.slow
def test_spawned_cluster_runs_and_is_stopped(tmp_path):
    stdout, out = _loadtest(tmp_path, "--spawn-cluster", "--workers", "1", "--users", "1",
                            "--duration", "1", "--mix", "seed")
    s = _summary(out)
    assert s["rows"][-1]["calls"] > 0 and s["cluster"]["workers"] == 1


@pytest.mark.slow
def test_evicted_leaves_are_sent_again_not_failed(cluster, tmp_path):
    out = tmp_path / "out"
    hits_before = cluster.status().cache_hits
    proc = subprocess.Popen([sys.executable, "-m", "remotegrad.server.cli", "loadtest",
                             "--target", cluster.address, "--users", "1", "--duration", "4",
                             "--mix", "repeat", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        r = cluster.redis.client()
        deadline = time.monotonic() + 60
        while cluster.status().cache_hits < hits_before + 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # the run is repeating its pool by hash
        for k in r.keys(f"{keys.PREFIX}:*"):  # what an LRU eviction would do to the tensors
            if b"tensor" in k or b"result" in k:
                r.delete(k)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout
    total = _summary(out)["rows"][-1]
    assert total["failures"] == 0 and total["resent"] >= 1, stdout
