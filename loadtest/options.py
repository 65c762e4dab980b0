"""The workload options, shared by `remotegrad loadtest`, its headless runner and
`locust -f` on the locustfile (no gevent or grpc imported here)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

MIXES: dict[str, dict[str, int]] = {
    "seed": {"seed": 1},            # seed-sized gradient calls, fresh inputs
    "mlp": {"mlp": 1},              # MLP gradients, parameters reused across calls
    "repeat": {"repeat": 1},        # exact repeats: cache hits
    "upload": {"upload": 1},        # a large fresh tensor each call
    "chain": {"chain": 1},          # synthetic graph of --ops ops over --numel elements
    "mixed": {"seed": 50, "repeat": 25, "mlp": 20, "upload": 5},
}


@dataclass
class Settings:
    target: str = "127.0.0.1:50051"
    mix: str = "seed"
    rate: float = 0.0               # calls/s over all users; 0: closed loop
    max_outstanding: int = 256      # open loop: calls in flight before arrivals are refused
    param_mib: float = 1.0
    upload_mib: float = 16.0
    ops: int = 16
    numel: int = 1024
    hit_ratio: float = 0.0
    call_timeout: float = 30.0
    seed: int = 0

    @classmethod
    def from_namespace(cls, ns) -> "Settings":
        return cls(**{f.name: getattr(ns, f.name) for f in fields(cls) if hasattr(ns, f.name)})

    def argv(self) -> list[str]:
        out = []
        for f in fields(self):
            out += [f"--{f.name.replace('_', '-')}", str(getattr(self, f.name))]
        return out


def add_workload_arguments(p) -> None:
    """Options that shape the calls (argparse or Locust's configargparse parser)."""
    p.add_argument("--mix", default="seed", choices=sorted(MIXES) + ["sweep"],
                   help="workload mix (sweep: one short run per point of the sweep grid)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="open loop: fixed arrival rate in calls/s over all users "
                        "(latency counted from each call's due time); 0: closed loop")
    p.add_argument("--max-outstanding", type=int, default=256,
                   help="open loop: calls in flight before new arrivals fail as CLIENT_BUSY")
    p.add_argument("--param-mib", type=float, default=1.0,
                   help="mlp: MiB of float32 parameters, reused across calls (1-16)")
    p.add_argument("--upload-mib", type=float, default=16.0,
                   help="upload: MiB of the fresh tensor sent each call")
    p.add_argument("--ops", type=int, default=16, help="chain: ops in the graph")
    p.add_argument("--numel", type=int, default=1024, help="chain: elements of the input")
    p.add_argument("--hit-ratio", type=float, default=0.0,
                   help="chain: share of calls that exactly repeat an earlier one")
    p.add_argument("--call-timeout", type=float, default=30.0, help="deadline of each call (s)")
    p.add_argument("--seed", type=int, default=0, help="RNG seed of the inputs")


def namespace_defaults() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_workload_arguments(p)
    return p.parse_args([])
