"""Where the time of one training step through a cluster goes: cProfile in every process
(the SDK here, the gateway, each worker), over the same steps.

    .venv/bin/python bench/profile_step.py [--steps 200] [--optimizer sgd|adam] [--top 25]
    .venv/bin/python bench/profile_step.py --timers [--steps 200]

The cluster's processes are profiled by bench/_profiled/sitecustomize.py (on their
PYTHONPATH, REMOTEGRAD_PROFILE_DIR set): each thread's profile, merged per process, written
when the process exits. Only the timed steps are in the SDK's profile; the servers' include
the warm-up (its first, planning calls show up as one-off costs).

cProfile inflates Python-heavy code several times over; --timers instead times only the
stages of one call (TIMERS below: wall and thread-CPU per call, bench/_timed/
sitecustomize.py), which costs a microsecond each, so the figures add up to the step's.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import glob  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from _common import environment, local_cluster  # noqa: E402
from train_step import trainer  # noqa: E402

import remotegrad as rg  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# The stages of one Compute through the gateway and the worker (a nested one counts in
# its caller too).
TIMERS = [f"remotegrad.server.gateway:{n}" for n in (
    "GatewayServicer.Compute", "Gateway.compute", "Gateway._validated", "Gateway._cached",
    "Gateway._stage", "Gateway._execute_recovering", "Gateway._start", "Gateway._by_reference",
    "Gateway._reserve", "Gateway._note_kept")] + [
    "remotegrad.server.cache:RedisResultCache.put", "remotegrad.server.cache:RedisResultCache.get",
    "remotegrad.proto.write_behind:WriteBehind._run",
    "remotegrad.worker.service:WorkerServicer.Execute",
    "remotegrad.worker.service:WorkerServicer._run",
    "remotegrad.worker.service:_verify_inline", "remotegrad.worker.compute:_compute",
    "remotegrad.worker.compute:evaluate", "remotegrad.worker.compute:_answer",
    "remotegrad.worker.held:WorkerStore.keep", "remotegrad.worker.held:WorkerStore._write",
    "remotegrad.proto.codec:encode_response", "remotegrad.proto.codec:decode_request"]


def top(stats: pstats.Stats, n: int, key: str) -> str:
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats(key).print_stats(n)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start - 2:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--timers", action="store_true", help="time the stages, not cProfile")
    args = ap.parse_args()
    print(environment())
    out = tempfile.mkdtemp(prefix="rg-profile-")
    hook = os.path.join(HERE, "_timed" if args.timers else "_profiled")
    env = {"REMOTEGRAD_PROFILE_DIR": out, "REMOTEGRAD_TIMERS": ",".join(TIMERS),
           "PYTHONPATH": os.pathsep.join(filter(None, [hook, os.environ.get("PYTHONPATH")]))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with local_cluster(args.workers) as cluster:
            for k, v in saved.items():  # this process is profiled below, by hand
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            rg.connect(cluster)
            step = trainer(args.optimizer)
            for _ in range(5):
                step()
            prof = cProfile.Profile()
            t = time.perf_counter()
            prof.enable()
            for _ in range(args.steps):
                step()
            prof.disable()
            wall = (time.perf_counter() - t) / args.steps
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    time.sleep(1)
    print(f"\n{args.steps} {args.optimizer} steps, {wall * 1e3:.2f} ms each (wall, profiled)")
    if args.timers:
        print_timers(out, args.steps)
        return
    print(f"\n=== SDK (this process), {args.steps} steps")
    print(top(pstats.Stats(prof), args.top, "tottime"))
    print(top(pstats.Stats(prof), args.top, "cumulative"))
    for path in sorted(glob.glob(os.path.join(out, "*.prof"))):
        name = os.path.basename(path)
        if name.startswith(("up-", "proc-")):
            continue
        print(f"\n=== {name}")
        print(top(pstats.Stats(path), args.top, "tottime"))
        print(top(pstats.Stats(path), args.top, "cumulative"))


def print_timers(folder: str, steps: int) -> None:
    """Each stage's wall and CPU ms per step (the warm-up's calls included: few)."""
    print(f"\n{'stage (ms per step)':<58} {'calls':>6} {'wall':>7} {'cpu':>7}")
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        name = os.path.basename(path)
        if name.startswith(("up-", "proc-")):
            continue
        with open(path) as f:
            totals = json.load(f)
        if not totals:
            continue
        print(f"--- {name}")
        for label, (n, wall, cpu) in totals.items():
            print(f"{label.split(':', 1)[1]:<58} {n:>6} {wall / steps * 1e3:>7.3f} "
                  f"{cpu / steps * 1e3:>7.3f}")


if __name__ == "__main__":
    main()
