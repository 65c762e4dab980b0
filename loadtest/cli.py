"""`remotegrad loadtest`: a headless Locust run against a gateway, bounded in time.

    remotegrad loadtest --target 127.0.0.1:50051 --users 8 --duration 30 --mix mixed
    remotegrad loadtest --spawn-cluster --workers 2 --users 4 --duration 10 --mix seed
    remotegrad loadtest --spawn-cluster --mix seed --rate 200 --duration 20   # open loop
    remotegrad loadtest --spawn-cluster --mix sweep --duration 5              # 5 s a point

The Locust run itself happens in a child process (`remotegrad.loadtest.run`) so that gevent
and gRPC's gevent mode are set up before anything else; this process only brings the
cluster up and down (by pid) and collects the results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .options import Settings, add_workload_arguments

MAX_DURATION = 3600.0
# What the `load` extra brings that a load test imports (in its child process).
LOAD_EXTRA = ("locust", "gevent", "matplotlib")

# The sweep: one axis at a time around a base point (a full grid would take hours).
SWEEP_BASE = {"ops": 16, "numel": 1024, "hit_ratio": 0.0, "users": 4}
SWEEP_AXES = {"ops": [1, 16, 256], "numel": [16, 65_536, 1_048_576],
              "hit_ratio": [0.0, 0.5, 0.9], "users": [1, 4, 16]}


def add_arguments(p) -> None:
    p.add_argument("--target", default=None,
                   help="gateway address (env REMOTEGRAD_ADDR, default 127.0.0.1:50051)")
    p.add_argument("--users", type=int, default=4, help="concurrent simulated clients")
    p.add_argument("--duration", type=float, default=10.0,
                   help=f"seconds to run (each point, for --mix sweep); at most {MAX_DURATION:g}")
    p.add_argument("--spawn-rate", type=float, default=0.0,
                   help="users started per second (default: all at once)")
    p.add_argument("--spawn-cluster", action="store_true",
                   help="bring up a local cluster (redis, gateway, workers) first; stop it after")
    p.add_argument("--workers", type=int, default=2, help="workers of --spawn-cluster")
    p.add_argument("--out", default="loadtest-out",
                   help="folder for report.html, chart.png, summary.json")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a target that is not a loopback address")
    add_workload_arguments(p)


def _child(target: str, settings: Settings, users: int, duration: float, spawn_rate: float,
           out: Path, quiet: bool = False, label: str = "") -> dict:
    settings.target = target
    argv = [sys.executable, "-m", "remotegrad.loadtest.run", *settings.argv(),
            "--users", str(users), "--duration", str(duration), "--spawn-rate",
            str(spawn_rate), "--out", str(out), "--label", label]
    if quiet:
        argv.append("--quiet")
    subprocess.run(argv, check=True, timeout=duration + 120, stdin=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text())


def sweep_points() -> list[dict]:
    points, seen = [], set()
    for axis, values in SWEEP_AXES.items():
        for v in values:
            p = dict(SWEEP_BASE, **{axis: v})
            key = tuple(sorted(p.items()))
            if key not in seen:
                seen.add(key)
                points.append(p)
    return points


def _sweep(args, target: str, out: Path) -> int:
    rows = []
    head = (f"{'ops':>5} {'numel':>9} {'hit':>5} {'users':>5} | {'calls/s':>8} {'p50 ms':>8} "
            f"{'p95 ms':>8} {'p99 ms':>8} {'fail':>5} {'hit%':>6} {'MiB out':>8}")
    print(f"remotegrad loadtest sweep: {len(sweep_points())} points x {args.duration:g}s, "
          f"target={target}, {'open loop %g/s' % args.rate if args.rate else 'closed loop'}")
    print(head)
    print("-" * len(head))
    for i, p in enumerate(sweep_points()):
        s = Settings.from_namespace(args)
        s.mix, s.ops, s.numel, s.hit_ratio = "chain", p["ops"], p["numel"], p["hit_ratio"]
        res = _child(target, s, p["users"], args.duration, 0.0, out / f"point{i:02d}",
                     quiet=True)
        r = res["rows"][-1]
        rows.append({**p, **r})
        print(f"{p['ops']:>5} {p['numel']:>9} {p['hit_ratio']:>5.2f} {p['users']:>5} | "
              f"{r['calls_per_s']:>8.1f} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['failures']:>5} {r['hit_ratio']:>6.1%} "
              f"{r['mib_out']:>8.1f}", flush=True)
    (out / "sweep.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}/sweep.json and a report.html/chart.png per point under {out}/")
    return 0


def missing_load_extra() -> list[str]:
    """The `load` extra's modules that cannot be imported here. Looked up, not imported:
    importing locust patches the standard library with gevent."""
    import importlib.util
    missing = []
    for name in LOAD_EXTRA:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def main(args) -> int:
    import os

    from ._cluster import is_loopback, local_cluster
    missing = missing_load_extra()
    if missing:
        print(f"remotegrad loadtest needs the load extra ({', '.join(missing)} not "
              "installed): pip install 'remotegrad[load]'", file=sys.stderr)
        return 2
    if not 0 < args.duration <= MAX_DURATION:
        print(f"--duration must be in (0, {MAX_DURATION:g}]", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def run(target: str) -> int:
        if args.mix == "sweep":
            return _sweep(args, target, out)
        _child(target, Settings.from_namespace(args), args.users, args.duration,
               args.spawn_rate, out)
        return 0

    if args.spawn_cluster:
        with local_cluster(args.workers) as address:
            return run(address)
    target = args.target or os.environ.get("REMOTEGRAD_ADDR") or "127.0.0.1:50051"
    if not is_loopback(target) and not args.allow_remote:
        print(f"refusing non-loopback target {target} (pass --allow-remote)", file=sys.stderr)
        return 2
    return run(target)
