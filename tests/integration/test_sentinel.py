"""Issue 17 item 4: a Sentinel failover under calls.

A gateway and a worker run with `--redis-url redis+sentinel://127.0.0.1:<sentinel>/<name>`
against a master, its replica and a Sentinel (real redis-servers on loopback). Calls run
from threads while the master is killed with SIGKILL, raw ones and SDK calls that upload
a large leaf each: no call fails (a Redis that does not answer degrades the cache; an
upload it cannot keep is UNAVAILABLE, which the SDK retries within its window; redis-py
follows the Sentinel to the new master), and once the replica is promoted, writes land
on it: an uploaded tensor, the result cache, the worker's heartbeat.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import numpy as np
import pytest
import torch

import remotegrad as rg

from procs import start_cluster, wait_until
from redis_modes import _client, start_sentinel_pair
from remotegrad.proto import codec, keys, registry
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.codec import WireNode

pytestmark = pytest.mark.integration


def _sum(x: np.ndarray, inline: bool = True) -> pb.ComputeRequest:
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": x.shape}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)] if inline else [], [1])


class Load:
    """Threads calling Compute until stopped, keeping every failure."""

    def __init__(self, stub, threads: int = 3) -> None:
        self.stub, self.stop = stub, threading.Event()
        self.ok, self.failed, self.lock = 0, [], threading.Lock()
        self.sdk_ok = 0
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True)
                        for t in range(threads)]
        self.threads.append(threading.Thread(target=self._run_sdk, daemon=True))

    def _run_sdk(self) -> None:
        """Through the SDK, each call with a new 8 MiB leaf: streamed up (PutTensor) into
        the store, then read there by the worker."""
        i = 0
        while not self.stop.is_set():
            i += 1
            x = np.full(2 << 20, float(i), np.float32)
            try:
                got = float((rg.from_numpy(x) * 2.0).sum())
                assert got == 2.0 * i * (2 << 20), got
                with self.lock:
                    self.sdk_ok += 1
            except Exception as e:  # noqa: BLE001  (a failed call is what the test counts)
                with self.lock:
                    self.failed.append(f"SDK: {e!r}"[:300])

    def _run(self, t: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            x = np.full(16, float(t * 100_000 + i), np.float32)  # new graphs: cache writes
            try:
                (got,) = codec.decode_response(self.stub.Compute(_sum(x), timeout=30))
                assert float(got) == 16.0 * (t * 100_000 + i)
                with self.lock:
                    self.ok += 1
            except (grpc.RpcError, AssertionError) as e:
                with self.lock:
                    self.failed.append(repr(e)[:300])
            time.sleep(0.02)

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=40)

    def wait_calls(self, n: int, sdk: int = 0, timeout: float = 60.0) -> None:
        wait_until(lambda: self.ok >= n and self.sdk_ok >= sdk,
                   f"{n} calls answered ({sdk} through the SDK)", timeout=timeout)


@pytest.fixture
def sentinel(tmp_path):
    s = start_sentinel_pair(tmp_path)
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.slow
def test_a_failover_under_calls_fails_no_call_and_writes_resume(sentinel):
    c = start_cluster(sentinel, 1)
    try:
        stub = c.stub()
        rg.connect(c.address)
        with Load(stub) as load:
            load.wait_calls(30, sdk=3)
            before, sdk_before = load.ok, load.sdk_ok
            os.kill(sentinel.master.pid, signal.SIGKILL)
            killed = time.monotonic()
            wait_until(lambda: sentinel.current_master() == sentinel.replica_port,
                       "the Sentinel promotes the replica", timeout=30)
            promoted = time.monotonic() - killed
            load.wait_calls(load.ok + 60, sdk=load.sdk_ok + 5)  # and calls go on after it
            print(f"\nfailover: replica promoted {promoted:.1f}s after SIGKILL; "
                  f"{load.ok - before} calls answered since the kill, and "
                  f"{load.sdk_ok - sdk_before} SDK calls with an uploaded 8 MiB leaf; "
                  f"{len(load.failed)} failed")
        assert load.failed == []
        new = _client(sentinel.replica_port)
        # Writes resume on the new master: the worker's heartbeat ...
        wait_until(lambda: list(registry.workers(new)), "heartbeat on the new master",
                   timeout=20)
        assert [w.address for w in c.status().workers] == list(registry.workers(new))
        # ... an uploaded tensor (a gateway leaves a Redis that failed alone for a second,
        # per tenant: an upload refused meanwhile is UNAVAILABLE, which the SDK retries) ...
        x = np.arange(50_000, dtype=np.float32)
        msg = codec.encode_array(x)
        wait_until(lambda: stub.PutTensor(iter(codec.to_chunks(msg)), timeout=30),
                   "an upload stored", timeout=10)
        resumed = time.monotonic() - killed
        print(f"uploads stored again {resumed:.1f}s after the kill")
        assert new.exists(keys.tensor_key("default", msg.hash))
        assert stub.HasTensors(pb.HasTensorsRequest(hashes=[msg.hash]), timeout=10).present[0]
        (total,) = codec.decode_response(stub.Compute(_sum(x, inline=False), timeout=30))
        assert float(total) == pytest.approx(torch.from_numpy(x).sum().item(), rel=1e-6)
        # ... and the result cache: the same graph again is a hit.
        wait_until(lambda: stub.Compute(_sum(x, inline=False), timeout=30).cache_hit,
                   "a cache hit from the new master", timeout=10)
    finally:
        c.close()
