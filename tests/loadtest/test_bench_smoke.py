"""The benchmark scripts still run: tiny, bounded versions on loopback. They print figures
and ratios; nothing here looks at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(*argv: str, timeout: float = 240) -> str:
    env = dict(os.environ, REMOTEGRAD_BENCH_QUIET_WAIT="0")
    proc = subprocess.run([sys.executable, str(BENCH / argv[0]), *argv[1:]], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_floor_prints_ratios():
    out = _bench("floor.py", "--calls", "30", "--workers", "1")
    assert "two-hop echo (tcp, tcp)" in out and "target <= 2.0x" in out


@pytest.mark.slow
def test_caching_sends_no_tensor_bytes_on_repeat():
    out = _bench("caching.py", "--mib", "1", "--repeats", "2", "--workers", "1")
    assert "tensor bytes sent 0 (target 0)" in out
