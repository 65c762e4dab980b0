"""The hedge delay follows observed latencies per size class, within its bounds, and the
hedge budget caps hedges at about a tenth of calls."""

from __future__ import annotations

from remotegrad.server.hedging import Budget, Latencies


def test_delay_is_default_until_enough_answers_then_follows_the_95th_percentile():
    lat = Latencies()
    assert lat.delay(1 << 20) == Latencies.DEFAULT
    for i in range(100):
        lat.record(1 << 20, 0.010 if i < 95 else 0.200)  # 5 slow answers in 100
    assert abs(lat.delay(1 << 20) - Latencies.FACTOR * 0.200) < 1e-9
    assert lat.delay(1 << 30) == Latencies.DEFAULT  # another size class: no answers yet
    for _ in range(20):
        lat.record(1 << 30, 60.0)
        lat.record(16, 1e-5)
    assert lat.delay(1 << 30) == Latencies.CEILING
    assert lat.delay(16) == Latencies.FLOOR


def test_budget_allows_a_tenth_of_calls_after_the_saved_ones():
    budget = Budget(per_call=0.1, cap=2.0)
    assert budget.spend() and budget.spend() and not budget.spend()
    granted = 0
    for _ in range(100):
        budget.earn()
        granted += budget.spend()
    assert 9 <= granted <= 10
