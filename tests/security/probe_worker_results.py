"""Probe for RELIABILITY.md (not a test): one Compute whose result is 256 MiB (an 8192×1
plus a 1×8192 float32, 64 KiB of leaves) through a gateway and a worker on loopback;
prints the bytes of the worker's Execute answer (the gateway's
remotegrad_worker_answer_bytes_total), the peak RSS growth (VmHWM) of gateway and worker
over the call, and whether the fetched result equals numpy's.

    .venv/bin/python tests/security/probe_worker_results.py

One redis-server, gateway and worker, started and stopped here by pid; the gateway's
default --inline-result-bytes (64 MiB). The figures before worker/by_reference.py were
taken with the same script run against the commit before it.
"""

from __future__ import annotations

import re
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from procs import free_port, start_redis, stop  # noqa: E402
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc  # noqa: E402
from sectools import Procs, as_tenant, wait_for_workers  # noqa: E402
from test_worker_results import TOKEN, _fetch, _outer_sum, _repeated  # noqa: E402

MiB = 1 << 20


def hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def answered(port: int) -> float:
    """remotegrad_worker_answer_bytes_total of the gateway's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    found = re.search(rb"^remotegrad_worker_answer_bytes_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def main() -> None:
    redis = start_redis()
    procs = Procs(redis, Path(tempfile.mkdtemp()))
    try:
        port = free_port()
        gw = procs.gateway("--tokens", f"{TOKEN}=alice", "--metrics-port", str(port))
        worker = procs.worker()
        ch = grpc.insecure_channel(gw.address, options=[
            ("grpc.max_receive_message_length", -1)])
        stub = pb_grpc.GatewayStub(ch)
        wait_for_workers(stub, 1, TOKEN)
        stub.Compute(_repeated(np.arange(16, dtype=np.float32), 1),
                     metadata=as_tenant(TOKEN), timeout=60)  # warm
        req, want = _outer_sum(seed=1)
        g0, w0, a0 = hwm(gw.popen.pid), hwm(worker.popen.pid), answered(port)
        resp = stub.Compute(req, metadata=as_tenant(TOKEN), timeout=300)
        g1, w1, a1 = hwm(gw.popen.pid), hwm(worker.popen.pid), answered(port)
        (r,) = resp.results
        same = np.array_equal(_fetch(stub, r.hash, want.nbytes), want)
        print(f"result {want.nbytes // MiB} MiB: worker answer {a1 - a0:.0f} bytes; "
              f"VmHWM growth gateway +{(g1 - g0) / MiB:.0f} MiB, worker "
              f"+{(w1 - w0) / MiB:.0f} MiB; Compute answer {resp.ByteSize()} bytes; "
              f"fetched equals numpy: {same}")
        ch.close()
    finally:
        procs.close()
        stop(redis.proc)


if __name__ == "__main__":
    main()
