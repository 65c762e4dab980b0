"""Issue 15, items 7 and 8 (their last parts): what a worker holds is inside its budget.

- The budget's wait for room is a setting (`--budget-wait`) and ends before the call's own
  deadline: a call that cannot fit is refused RESOURCE_EXHAUSTED saying which bound ended
  its wait, never left to run into DEADLINE_EXCEEDED.
- The worker's tensor cache and plan cache count against `--memory-limit`: a call that
  does not fit beside them evicts them first (before, a 200 MiB worker kept 1 GiB of
  cached tensors beside its budget).
- An inline leaf's copies are counted (the request's, the cache's, the array).

Each test runs a real gateway and worker (raw gRPC client) and reads the worker's RSS from
/proc/<pid>/status.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from procs import start_redis, stop
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode
from sectools import Procs, as_tenant, code_of, wait_for_workers

pytestmark = pytest.mark.integration

TOKEN = "tok-worker-memory-0123456"
MIB = 1 << 20


def _start(tmp_path, *worker_args):
    tmp_path.mkdir(parents=True, exist_ok=True)
    redis = start_redis()
    procs = Procs(redis, tmp_path)
    gw = procs.gateway("--tokens", f"{TOKEN}=alice")
    worker = procs.worker(*worker_args)
    stub = pb_grpc.GatewayStub(grpc.insecure_channel(
        gw.address, options=[("grpc.max_send_message_length", -1)]))
    wait_for_workers(stub, 1, TOKEN)
    return redis, procs, stub, worker


def _slow_product(n: int = 7168):
    """full((n, n)) @ full((n, n)): 3 × 196 MiB, 6 s or more of BLAS (in row blocks)."""
    nodes = [WireNode(0, "full", (), {"shape": (n, n), "value": 1.0, "dtype": "float32"}),
             WireNode(1, "full", (), {"shape": (n, n), "value": 1.0 / n, "dtype": "float32"}),
             WireNode(2, "mm", (0, 1), {}),
             WireNode(3, "sum", (2,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [], [3])


def _call(stub, req, timeout):
    return code_of(lambda: stub.Compute(req, metadata=as_tenant(TOKEN), timeout=timeout))


@pytest.mark.slow
def test_the_budget_wait_is_a_setting_and_ends_before_the_deadline(tmp_path):
    """On a 700 MiB worker with --budget-wait 1, one 590 MiB product runs; a second waits
    1 s and is refused naming --budget-wait; on one with the default 30 s, a second call
    with a 2 s deadline is refused before its deadline, naming it."""
    redis, procs, stub, _ = _start(tmp_path, "--memory-limit", "700MiB",
                                   "--budget-wait", "1")
    try:
        first = threading.Thread(target=_call, args=(stub, _slow_product(), 5))
        first.start()
        time.sleep(0.5)  # the first admitted
        t0 = time.monotonic()
        code, details = _call(stub, _slow_product(), 20)
        took = time.monotonic() - t0
        assert code == "RESOURCE_EXHAUSTED", (code, details)
        assert "--budget-wait" in details and "waited 1." in details, details
        assert 0.9 < took < 2.5, took
        first.join(30)
    finally:
        procs.close()
        stop(redis.proc)
    redis, procs, stub, _ = _start(tmp_path / "default", "--memory-limit", "700MiB")
    try:
        first = threading.Thread(target=_call, args=(stub, _slow_product(), 5))
        first.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        code, details = _call(stub, _slow_product(), 2)
        took = time.monotonic() - t0
        assert code == "RESOURCE_EXHAUSTED", (code, details)
        assert "the call's deadline" in details, details
        assert took < 2.0, took
        first.join(30)
    finally:
        procs.close()
        stop(redis.proc)


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def _inline_sum(k: int, mib: int = 40):
    """sum(x) of an inline float32 leaf of `mib` MiB whose values depend on k (one new
    tensor per k, cached by the worker under its hash)."""
    import numpy as np
    x = np.full(mib * MIB // 4, float(k), dtype=np.float32)
    nodes = [WireNode(0, "leaf", (), {"hash": codec.array_hash(x), "dtype": "float32",
                                      "shape": x.shape}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x)], [1])


def test_the_tensor_cache_is_inside_the_memory_budget(tmp_path):
    """Ten calls, each with a new 40 MiB inline leaf, on a 120 MiB worker whose tensor
    cache may hold 1 GiB (--memory-cache-bytes default): before, the cache kept all ten
    beside the budget (worker RSS +400 MiB and more); now what it keeps is counted, and
    evicted for each call and after it, so the worker stays near its budget."""
    redis, procs, stub, worker = _start(tmp_path, "--memory-limit", "120MiB")
    try:
        code, _ = _call(stub, _inline_sum(99, 1), 60)  # warm: the first call's imports
        assert code == "OK"
        base = _rss(worker.popen.pid)
        for k in range(10):
            req = _inline_sum(k)
            code, details = _call(stub, req, 60)
            assert code == "OK", (code, details)
        grown = _rss(worker.popen.pid) - base
        assert grown < 260 * MIB, grown / MIB  # 113-188 MiB here; +435 MiB before
    finally:
        procs.close()
        stop(redis.proc)


@pytest.mark.serial
def test_the_budget_evicts_its_caches_before_it_refuses_or_waits():
    """In process, with the worker's own cache classes: 80 MiB of cached tensors and a
    kept plan on a 100 MiB budget; a 60 MiB call evicts the least recently used tensors
    (and no more) instead of waiting, a 99 MiB one evicts the plans too, and a call's end
    shrinks the caches back within what the running calls leave."""
    import numpy as np

    from remotegrad.proto.store import MemoryTensorStore
    from remotegrad.worker import engine
    from remotegrad.worker.budget import Budget

    tensors, plans = MemoryTensorStore(1 << 30), engine.Plans()
    for k in range(4):
        tensors.put("t", codec.encode_array(np.full(5 * MIB, k, dtype=np.float32)))
    nodes = [WireNode(0, "full", (), {"shape": (3,), "value": 1.0, "dtype": "float32"}),
             WireNode(1, "exp", (0,), {})]
    key = engine.structure(nodes, [1])[0]
    plans.put(key, engine.plan(nodes, [1])[0])
    assert plans.nbytes() > 0 and tensors.nbytes() > 80 * MIB
    budget = Budget(100 * MIB, wait=0.2, caches=(tensors, plans))
    t = budget.ticket()
    t.take(60 * MIB)  # nobody releases: without evicting it would raise after 0.2 s
    assert 20 * MIB < tensors.nbytes() <= 40 * MIB and len(plans) == 1
    other = budget.ticket()
    other.take(40 * MIB - plans.nbytes())  # all the tensors out, the plan stays
    assert tensors.nbytes() == 0 and len(plans) == 1
    other.release()
    t.release()
    third = budget.ticket()
    third.take(100 * MIB)  # the whole budget: the plan goes too
    assert len(plans) == 0
    third.release()


class _Peak:
    """This process's highest VmRSS above where it was, sampled every half millisecond."""

    def __enter__(self):
        self.base, self.most, self._done = _rss_self(), 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(0.0005):
            self.most = max(self.most, _rss_self() - self.base)

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(5)


def _rss_self() -> int:
    import os
    return _rss(os.getpid())


def test_an_inline_leaf_is_held_twice_while_computing_not_three_times():
    """The worker's own path (parse, verify, compute, cache), in process: while a 40 MiB
    inline leaf is computed on, the request's copy and the leaf's array exist, not also
    the cache's (it is stored after the arrays are gone), and reading its bytes is one
    copy, not one per read (before: +80 MiB above the parsed request, now +40)."""
    from remotegrad.proto import remotegrad_pb2 as pb
    from remotegrad.proto.store import MemoryTensorStore
    from remotegrad.worker import service
    from remotegrad.worker.compute import Cancellation, compute

    store = MemoryTensorStore(1 << 30)
    warm = pb.ComputeRequest.FromString(_inline_sum(98, 1).SerializeToString())
    compute(warm, store, "t", cancel=Cancellation())
    req = pb.ComputeRequest.FromString(_inline_sum(7, 40).SerializeToString())
    with _Peak() as verify:
        service._verify_inline(req)
    with _Peak() as computing:
        resp = compute(req, store, "t", cancel=Cancellation())
    assert float(codec.decode_array(resp.results[0])) == 7 * 10 * MIB
    assert verify.most < 50 * MIB, verify.most / MIB
    assert computing.most < 50 * MIB, computing.most / MIB
    assert store.get("t", req.tensors[0].hash) is not None  # remembered all the same


def test_a_worker_counts_the_requests_copy_of_an_inline_leaf(tmp_path):
    """A 32 MiB inline leaf costs a worker its array and the request's copy: on a 56 MiB
    worker the call is refused, naming about 64 MiB (before: admitted on an estimate of
    32 MiB, and the worker's RSS rose by 86-128 MiB)."""
    redis, procs, stub, _ = _start(tmp_path, "--memory-limit", "56MiB")
    try:
        code, details = _call(stub, _inline_sum(5, 32), 60)
        assert code == "RESOURCE_EXHAUSTED", (code, details)
        assert "64" in details and "56" in details, details
        code, _ = _call(stub, _inline_sum(5, 16), 60)  # 32 MiB in all: fits
        assert code == "OK"
    finally:
        procs.close()
        stop(redis.proc)
