"""bench/gateways.py still runs (tiny, bounded, loopback): 1 and 2 real gateways behind
one round_robin target, SDK clients, no failed call, and the calls of the 2-gateway level
spread over both gateways (each gateway's own metrics). Nothing here looks at a time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_gateways_bench_spreads_calls_and_prints_the_ratio():
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gateways.py"), "--clients", "2", "--workers", "1",
         "--gateways", "1,2", "--seconds", "1", "--rounds", "1", "--no-peer"],
        env=dict(os.environ, REMOTEGRAD_BENCH_QUIET_WAIT="0"), capture_output=True,
        text=True, timeout=240, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "client errors: 0" in out and "vs 1 gw" in out, out
    spread = re.search(r"2 gateway\(s\): .*calls per gateway \[(\d+), (\d+)\]", out)
    assert spread, out
    a, b = int(spread[1]), int(spread[2])
    assert min(a, b) >= 0.3 * (a + b), (a, b)  # pick_first would give one of them all
