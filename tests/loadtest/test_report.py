"""The summary's numbers come from every call; the chart is a PNG."""

from __future__ import annotations

import pytest

from remotegrad.loadtest.cli import SWEEP_AXES, SWEEP_BASE, sweep_points
from remotegrad.loadtest.report import Call, format_table, summarize, write_chart


def _calls():
    out = [Call(t=i * 0.01, latency=(i + 1) / 1000, name="seed", code="OK", hit=i % 4 == 0,
                bytes_out=500, bytes_in=100) for i in range(100)]
    out += [Call(t=0.5, latency=0.0, name="mlp", code="UNAVAILABLE", hit=False, bytes_out=10,
                 bytes_in=0)] * 3
    return out


def test_summary_percentiles_failures_and_hits():
    rows = summarize(_calls(), seconds=2.0)
    assert [r.name for r in rows] == ["mlp", "seed", "TOTAL"]
    total = rows[-1]
    seed = next(r for r in rows if r.name == "seed")
    assert seed.calls == 100 and seed.failures == 0
    assert seed.calls_per_s == pytest.approx(50.0)
    assert seed.p50_ms == pytest.approx(50.5) and seed.p99_ms == pytest.approx(99.01)
    assert seed.hit_ratio == pytest.approx(0.25)
    assert total.failures == 3 and total.by_code == {"OK": 100, "UNAVAILABLE": 3}
    text = format_table(rows, "t")
    assert "UNAVAILABLE=3" in text and "TOTAL" in text


def test_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    write_chart(_calls(), tmp_path / "c.png", "test")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_moves_one_axis_at_a_time():
    points = sweep_points()
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    for p in points:
        assert sum(p[k] != SWEEP_BASE[k] for k in SWEEP_BASE) <= 1
    for axis, values in SWEEP_AXES.items():
        assert {p[axis] for p in points} == set(values) | {SWEEP_BASE[axis]}
