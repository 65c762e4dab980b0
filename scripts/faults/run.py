"""Run one fault scenario (or all) against real loopback processes and print its figures.

    python scripts/faults/run.py worker-kill
    python scripts/faults/run.py soak --seconds 600
    python scripts/faults/run.py all
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import SCENARIOS, run  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=[*SCENARIOS, "all"])
    p.add_argument("--seconds", type=float, default=None, help="soak duration")
    a = p.parse_args()
    names = list(SCENARIOS) if a.scenario == "all" else [a.scenario]
    for name in names:
        kw = {"seconds": a.seconds} if name == "soak" and a.seconds else {}
        run(name, **kw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
