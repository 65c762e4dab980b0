"""Faults under a steady load from several client processes (scripts/faults/scenarios.py):
each scenario prints its figures (pytest -s shows them) and its promises are asserted."""

from __future__ import annotations

import pytest

import scenarios

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_worker_sigkilled_mid_call_fails_no_call():
    f = scenarios.run("worker-kill", before=1.5, after=3.0)
    assert f["calls"] > 50 and f["failed"] == 0, f
    assert f["worst_around_fault_s"] < f["deadline_s"], f


@pytest.mark.slow
def test_redis_killed_and_restarted_fails_no_call_and_caching_resumes():
    f = scenarios.run("redis-restart", before=1.5, down=1.5, after=2.0)
    assert f["calls"] > 50 and f["failed"] == 0, f
    assert f["cache_hit_again"] and f["redis_errors_counted"] > 0, f


@pytest.mark.slow
def test_gateway_restarted_sdk_retry_carries_calls_through():
    f = scenarios.run("gateway-restart", before=1.5, after=2.0)
    assert f["calls"] > 50 and f["failed"] == 0, f
    assert f["worst_around_fault_s"] < f["deadline_s"], f


@pytest.mark.slow
def test_slow_worker_deadline_exceeded_and_cancelled_on_the_worker():
    f = scenarios.run("slow-worker", deadline=1.0, repeats=4)
    assert f["status"] == ["DEADLINE_EXCEEDED"] * 4, f
    assert all(1.0 <= t < 1.5 for t in f["answered_after_s"]), f
    # Stopped after the op in progress, not when the graph would have ended (~30 s).
    assert f["worker_cancelled_calls"] == 4 and max(f["worker_stopped_s_after_answer"]) < 2, f
    assert f["gateway_inflight_after"] == 0 and f["worker_serves_after"], f
    # Nothing left allocated: the 2nd..4th cancelled calls (each had allocated and
    # dropped ~100 MiB of intermediates) leave the worker's memory where it was.
    rss = f["worker_rss_mib"]
    assert rss[-1] - rss[2] < 32, f


@pytest.mark.slow
def test_stuck_worker_deadline_exceeded_and_abandoned_call_never_runs():
    f = scenarios.run("stuck-worker", deadline=1.0, repeats=2)
    assert f["status"] == ["DEADLINE_EXCEEDED"] * 2, f
    assert all(1.0 <= t < 1.5 for t in f["answered_after_s"]), f
    assert f["worker_completed_abandoned_calls"] == 0, f
    assert all(f["worker_idle_2s_after_thaw"]) and f["gateway_inflight_after"] == 0, f
    assert f["worker_serves_after"], f


def test_all_workers_gone_fails_fast_then_serves_when_one_registers():
    f = scenarios.run("no-workers")
    assert f["failed_as"] == ["ClusterUnavailableError"], f
    assert "no live workers" in f["message"], f
    assert f["worst_failure_s"] < 1.0, f
    assert f["value"] == 22.0 and f["first_success_s_after_worker_start"] < 10, f


@pytest.mark.slow
def test_soak_short():
    """The 10-minute soak of RELIABILITY.md, shortened: `run.py soak --seconds 600`."""
    f = scenarios.run("soak", seconds=20, clients=3, rate=15, cache_mib=64,
                      redis_maxmemory="256mb")
    assert f["failed"] == 0 and f["calls"] > 20 * 3 * 15 * 0.8, f
    # The stated bound: a process grows by at most its configured cache, plus 32 MiB.
    for name, m in f["rss"].items():
        cache = 256 if name == "redis" else 64 if name.startswith(("worker", "gateway")) else 0
        assert m["growth_mib"] < cache + 32, (name, m)
