"""The worker's own path for one training step, in this process: a step's Execute request
captured from a real cluster (bench/_capture/sitecustomize.py in its workers), then
replayed here as gRPC hands it over (parsed from its bytes), each call with a fresh batch
(its own bytes and hash, so the tensor LRU stores it as a step does): _verify_inline and
compute(), with the worker's budget and a store holding the parameters the request reads.
Per stage, the thread's CPU per call; no gRPC, no other process, so the figures hold still
where a cluster's move with the machine's load.

    .venv/bin/python bench/worker_path.py [--optimizer sgd|adam] [--calls 200]

To compare two trees, put each first on PYTHONPATH (as `remotegrad`) in turn.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import glob  # noqa: E402
import pickle  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import environment, local_cluster  # noqa: E402
from train_step import trainer  # noqa: E402

import remotegrad as rg  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def capture(optimizer: str, steps: int = 35) -> tuple[bytes, str, dict]:
    """(request bytes, tenant, {name: held array it reads}) of the 30th call a worker ran."""
    out = tempfile.mkdtemp(prefix="rg-capture-")
    env = {"REMOTEGRAD_CAPTURE_DIR": out, "PYTHONPATH": os.pathsep.join(filter(None, [
        os.path.join(HERE, "_capture"), os.environ.get("PYTHONPATH")]))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with local_cluster(2) as cluster:
            rg.connect(cluster)
            step = trainer(optimizer)
            for _ in range(steps):
                step()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    (path,) = glob.glob(os.path.join(out, "request-*.pkl"))[:1]
    with open(path, "rb") as f:
        return pickle.load(f)


def fresh_batches(raw: bytes, n: int) -> list[bytes]:
    """The request n times, its largest inline tensor (the batch) new each time."""
    from remotegrad.proto import codec
    from remotegrad.proto import remotegrad_pb2 as pb
    base = pb.ComputeRequest.FromString(raw)
    del base.release[:]  # replayed: nothing the store holds may go
    big = max(range(len(base.tensors)), key=lambda i: len(base.tensors[i].data))
    old, x = base.tensors[big].hash, codec.decode_array(base.tensors[big])
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        req = pb.ComputeRequest()
        req.CopyFrom(base)
        msg = codec.encode_array(rng.standard_normal(x.shape).astype(x.dtype))
        req.tensors[big].CopyFrom(msg)
        for node in req.graph.nodes:
            if node.op == "leaf" and node.attrs["hash"].s == old:
                node.attrs["hash"].s = msg.hash
        out.append(req.SerializeToString())
    return out


def replay(tenant: str, held: dict, requests: list[bytes], warm: int = 5) -> dict:
    """CPU seconds per call of each stage, over the requests after the first `warm`."""
    from remotegrad.proto import remotegrad_pb2 as pb
    from remotegrad.proto.store import MemoryTensorStore
    from remotegrad.worker import compute as comp
    from remotegrad.worker import engine
    from remotegrad.worker.backend import numpy_backend
    from remotegrad.worker.budget import Budget
    from remotegrad.worker.held import Held, WorkerStore
    from remotegrad.worker.service import _verify_inline

    store = WorkerStore(MemoryTensorStore(1 << 30), Held(1 << 30))
    for name, value in held.items():
        value = np.array(value)
        value.flags.writeable = False
        store.held.keep(tenant, name, value, pinned=False)
    budget = Budget(0, 1e12, 30.0, "numpy", caches=(store.leaves, store.held, engine.plans))
    totals: dict[str, float] = {}

    def timed(label, fn):
        def run(*a, **k):
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                totals[label] = totals.get(label, 0.0) + time.thread_time() - t
        return run

    stages = [(comp, "evaluate"), (comp, "_answer"), (comp.codec, "decode_request"),
              (comp.engine, "plan")]
    real = {(m, n): getattr(m, n) for m, n in stages}
    for m, n in stages:
        setattr(m, n, timed(n, getattr(m, n)))
    verify = timed("_verify_inline", _verify_inline)
    call = timed("in all (verify + compute)", lambda req: (verify(req), comp.compute(
        req, store, tenant, numpy_backend, comp.Cancellation(), budget)))
    try:
        for k, raw in enumerate(requests):
            if k == warm:
                totals.clear()
            call(pb.ComputeRequest.FromString(raw))  # as gRPC hands it over
    finally:
        for (m, n), fn in real.items():
            setattr(m, n, fn)
    return {k: v / (len(requests) - warm) for k, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    print(environment())
    raw, tenant, held = capture(args.optimizer)
    requests = fresh_batches(raw, args.calls + 5)
    print(f"\n{args.optimizer} step's worker path, {args.calls} calls, CPU ms a call")
    for label, seconds in replay(tenant, held, requests).items():
        print(f"{label:<28} {seconds * 1e3:8.3f}")


if __name__ == "__main__":
    main()
