"""What a load test measured: one record per call, the summary table, and the chart.

Percentiles are exact, from every call's latency (Locust's own statistics round times under
100 ms to whole milliseconds, too coarse for millisecond calls; its HTML report is written
as well). Bytes on the wire are the protobuf sizes of requests and responses (HTTP/2 and
TCP framing add a few dozen bytes per call on top).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Call", "Recorder", "Summary", "summarize", "format_table", "write_chart"]


@dataclass(slots=True)
class Call:
    t: float            # wall-clock time the call was due (open loop) or started (closed)
    latency: float      # seconds, from t to the answer
    name: str           # workload name
    code: str           # "OK" or the gRPC status code's name
    hit: bool           # the gateway answered from its result cache
    bytes_out: int
    bytes_in: int
    resent: bool = False  # leaves the cluster had evicted were sent again (one retry)


class Recorder:
    """Collects Call records (greenlets share one process: a list suffices)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def add(self, call: Call) -> None:
        self.calls.append(call)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps([asdict(c) for c in self.calls]))

    @staticmethod
    def load(path: Path) -> list[Call]:
        return [Call(**c) for c in json.loads(path.read_text())]


@dataclass
class Summary:
    name: str
    calls: int
    seconds: float
    calls_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    failures: int
    hit_ratio: float
    mib_out: float
    mib_in: float
    by_code: dict[str, int] = field(default_factory=dict)
    resent: int = 0


def _summary(name: str, calls: list[Call], seconds: float) -> Summary:
    ok = [c for c in calls if c.code == "OK"]
    lat = np.array([c.latency for c in ok]) * 1e3 if ok else np.zeros(1)
    p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
    return Summary(
        name=name, calls=len(calls), seconds=seconds,
        calls_per_s=len(ok) / seconds if seconds > 0 else 0.0,
        p50_ms=p50, p95_ms=p95, p99_ms=p99, max_ms=float(lat.max()),
        failures=len(calls) - len(ok),
        hit_ratio=sum(c.hit for c in ok) / len(ok) if ok else 0.0,
        mib_out=sum(c.bytes_out for c in calls) / 2**20,
        mib_in=sum(c.bytes_in for c in ok) / 2**20,
        by_code=dict(Counter(c.code for c in calls)),
        resent=sum(c.resent for c in calls))


def summarize(calls: list[Call], seconds: float) -> list[Summary]:
    """One row per workload and a TOTAL row."""
    names = sorted({c.name for c in calls})
    rows = [_summary(n, [c for c in calls if c.name == n], seconds) for n in names]
    if len(rows) != 1:
        rows.append(_summary("TOTAL", calls, seconds))
    return rows


def format_table(rows: list[Summary], title: str = "") -> str:
    head = (f"{'workload':<10} {'calls':>7} {'calls/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'p99 ms':>8} {'max ms':>8} {'fail':>5} {'hit':>6} {'MiB out':>9} {'MiB in':>8}")
    out = [title] if title else []
    out += [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r.name:<10} {r.calls:>7} {r.calls_per_s:>9.1f} {r.p50_ms:>8.2f} "
                   f"{r.p95_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.1f} {r.failures:>5} "
                   f"{r.hit_ratio:>6.1%} {r.mib_out:>9.1f} {r.mib_in:>8.1f}")
    total = rows[-1]
    codes = ", ".join(f"{k}={v}" for k, v in sorted(total.by_code.items()))
    out.append(f"status codes: {codes or 'none'}")
    if total.resent:
        out.append(f"resent after eviction (FAILED_PRECONDITION, then leaves inline again): "
                   f"{total.resent} calls")
    return "\n".join(out)


def write_chart(calls: list[Call], path: Path, title: str = "") -> None:
    """Throughput (calls/s, failures/s) and latency (p50/p95/p99) per second of the run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    if calls:
        t0 = min(c.t for c in calls)
        end = np.array([c.t - t0 + c.latency for c in calls])
        nbins = max(1, int(np.floor(end.max())))  # whole seconds only
        edges = np.arange(nbins + 1)
        ok = np.array([c.code == "OK" for c in calls])
        lat = np.array([c.latency for c in calls]) * 1e3
        ax1.plot(edges[:-1], np.histogram(end[ok], edges)[0], label="calls/s")
        ax1.plot(edges[:-1], np.histogram(end[~ok], edges)[0], label="failures/s")
        which = np.digitize(end, edges) - 1
        for q in (50, 95, 99):
            ys = [np.percentile(lat[ok & (which == i)], q) if np.any(ok & (which == i))
                  else np.nan for i in range(nbins)]
            ax2.plot(edges[:-1], ys, label=f"p{q}")
    ax1.set_ylabel("calls per second")
    ax1.legend(loc="upper right")
    ax2.set_ylabel("latency (ms)")
    ax2.set_xlabel("seconds since start (by completion time)")
    ax2.set_yscale("log")
    ax2.legend(loc="upper right")
    fig.suptitle(title or "remotegrad load test")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
