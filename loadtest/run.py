"""One headless Locust run in this process: `python -m remotegrad.loadtest.run ...`.

`remotegrad loadtest` starts this as a child process so that gevent patches the standard
library and gRPC before anything else is imported. It writes, under --out:
report.html (Locust's), chart.png (throughput and latency per second), calls.json (every
call) and summary.json (the table's numbers and the cluster's own cache counters).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

from remotegrad.loadtest import _gevent  # noqa: E402

_gevent.init()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

MAX_DURATION = 3600.0


def _parser() -> argparse.ArgumentParser:
    from remotegrad.loadtest.options import add_workload_arguments
    p = argparse.ArgumentParser(prog="python -m remotegrad.loadtest.run")
    p.add_argument("--target", required=True)
    p.add_argument("--users", type=int, default=4)
    p.add_argument("--spawn-rate", type=float, default=0.0, help="users started per second "
                   "(default: all at once)")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--out", default="loadtest-out")
    p.add_argument("--label", default="")
    p.add_argument("--quiet", action="store_true")
    add_workload_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from locust import html
    from locust.env import Environment
    from locust.stats import stats_history

    from remotegrad.loadtest import locustfile
    from remotegrad.loadtest.options import Settings
    from remotegrad.loadtest.report import format_table, summarize, write_chart

    duration = min(max(args.duration, 0.5), MAX_DURATION)
    settings = Settings.from_namespace(args)
    for k, v in vars(settings).items():
        setattr(locustfile.SETTINGS, k, v)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    before = locustfile.cluster_status(args.target)
    env = Environment(user_classes=[locustfile.RemotegradUser], host=args.target,
                      events=locustfile.events)
    runner = env.create_local_runner()
    history = gevent.spawn(stats_history, runner)
    started = time.perf_counter()
    runner.start(args.users, spawn_rate=args.spawn_rate or args.users)
    gevent.spawn_later(duration, runner.quit)
    runner.greenlet.join(timeout=duration + 60)
    locustfile.stop_all()
    elapsed = time.perf_counter() - started
    history.kill(block=False)
    after = locustfile.cluster_status(args.target)

    calls = [c for c in locustfile.RECORDER.calls]
    rows = summarize(calls, elapsed)
    mode = f"open loop {args.rate:g}/s" if args.rate > 0 else "closed loop"
    title = (f"remotegrad loadtest: mix={args.mix} users={args.users} {mode} "
             f"{elapsed:.1f}s target={args.target} {args.label}").rstrip()
    cluster = {}
    if before is not None and after is not None:
        hits = after.cache_hits - before.cache_hits
        misses = after.cache_misses - before.cache_misses
        cluster = {"workers": len(after.workers), "cache_hits": hits, "cache_misses": misses,
                   "hit_ratio": hits / (hits + misses) if hits + misses else 0.0}
    if not args.quiet:
        print(format_table(rows, title))
        if cluster:
            print(f"gateway cache: {cluster['cache_hits']} hits, {cluster['cache_misses']} "
                  f"misses ({cluster['hit_ratio']:.1%}), {cluster['workers']} workers")
    (out / "report.html").write_text(html.get_html_report(env, show_download_link=False))
    write_chart(calls, out / "chart.png", title)
    locustfile.RECORDER.dump(out / "calls.json")
    (out / "summary.json").write_text(json.dumps({
        "title": title, "settings": asdict(settings), "users": args.users,
        "duration": duration, "elapsed": elapsed, "cluster": cluster,
        "rows": [asdict(r) for r in rows]}, indent=1))
    if not args.quiet:
        print(f"wrote {out}/report.html, {out}/chart.png, {out}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
