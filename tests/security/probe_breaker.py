"""Probe for RELIABILITY.md's threat model (not a test): while tenant alice fetches her
large tensor's chunk key `<h>:0` in a loop, tenant bob asks HasTensors for his own tensor
100 times, 10 ms apart; prints how many of bob's answers said "absent".

    .venv/bin/python tests/security/probe_breaker.py

One redis-server, gateway and worker on loopback, started and stopped here by pid.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from procs import start_redis, stop  # noqa: E402
from remotegrad.proto import remotegrad_pb2 as pb  # noqa: E402
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc  # noqa: E402
from sectools import Procs, as_tenant, put, wait_for_workers  # noqa: E402


def main() -> None:
    redis = start_redis()
    procs = Procs(redis, Path(tempfile.mkdtemp(prefix="probe-")))
    try:
        gw = procs.gateway("--tokens", "ta=alice,tb=bob")
        procs.worker()
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address))
        wait_for_workers(stub, 1, "ta")
        big = put(stub, np.zeros((33 << 20) // 4, np.float32), "ta")  # two Redis chunks
        mine = put(stub, np.arange(3000, dtype=np.float64), "tb")
        done = threading.Event()

        def alice() -> None:
            while not done.is_set():
                try:
                    list(stub.FetchTensor(pb.FetchTensorRequest(hash=f"{big}:0"),
                                          metadata=as_tenant("ta"), timeout=5))
                except grpc.RpcError:
                    pass
        t = threading.Thread(target=alice)
        t.start()
        absent = 0
        for _ in range(100):
            present = stub.HasTensors(pb.HasTensorsRequest(hashes=[mine]),
                                      metadata=as_tenant("tb"), timeout=5).present
            absent += list(present) != [True]
            time.sleep(0.01)
        done.set()
        t.join()
        print(f"bob's own tensor reported absent: {absent} of 100")
    finally:
        procs.close()
        stop(redis.proc)


if __name__ == "__main__":
    main()
