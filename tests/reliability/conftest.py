"""Reliability tests drive the scenarios in scripts/faults (real loopback processes)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "faults"))
