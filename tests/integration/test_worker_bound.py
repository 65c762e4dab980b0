"""Issue 17 item 3: workers bound their own concurrency.

Each gateway counts only its own calls, so several gateways could together send one
worker more than it can run. Now a worker admits at most --max-inflight computing plus
--max-queue waiting calls and refuses any more at once with RESOURCE_EXHAUSTED
("worker at capacity"), while its health check keeps answering; a gateway that gets that
answer tries another worker instead of failing the call.
"""

from __future__ import annotations

import subprocess
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from procs import PY, free_port, stop, wait_until
from raw_requests import quick_request, slow_request
from remotegrad.proto import codec, registry
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration


def _worker(*args: str) -> tuple[subprocess.Popen, str]:
    """A worker without Redis; its address from the line it prints once serving."""
    proc = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "worker", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            return proc, line.rsplit(" ", 1)[-1].strip()
        if not line and proc.poll() is not None:
            break
    stop(proc)
    raise RuntimeError("worker did not start")


@pytest.fixture
def bounded():
    """A worker that runs one call and queues none, and a worker with room."""
    small, small_addr = _worker("--max-inflight", "1", "--max-queue", "0")
    try:
        roomy, roomy_addr = _worker()
        try:
            yield small_addr, roomy_addr
        finally:
            stop(roomy)
    finally:
        stop(small)


def test_a_worker_at_its_bound_refuses_at_once_and_stays_healthy(bounded):
    small, _ = bounded
    ch = grpc.insecure_channel(small)
    stub = pb_grpc.WorkerStub(ch)
    slow = stub.Execute.future(slow_request(), timeout=120)
    time.sleep(0.5)  # admitted and computing
    began = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        stub.Execute(quick_request(1), timeout=30)
    took = time.monotonic() - began
    print(f"\nrefused in {took * 1e3:.0f} ms while a call runs")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.details().startswith(registry.BUSY)
    assert took < 1.0 and not slow.done()
    health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    slow.cancel()  # the worker stops inside the product (between its blocks)
    # Its turn free again, it takes the next call.
    wait_until(lambda: _answer(stub, 2) == 8.0, "the worker free again", timeout=60)


def _answer(stub, i: int):
    """The quick call's value, or None while the worker is still at its bound."""
    try:
        (got,) = codec.decode_response(stub.Execute(quick_request(i), timeout=30))
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return None
        raise
    return float(got)


def test_a_gateway_tries_another_worker_when_one_is_at_its_bound(bounded):
    small, roomy = bounded
    port = free_port()
    # Static workers: this gateway has no heartbeat telling it the small one is busy.
    gw = subprocess.Popen([PY, "-m", "remotegrad.server.cli", "gateway", "--port", str(port),
                           "--worker-addrs", f"{small},{roomy}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        wait_until(lambda: len(stub.ClusterStatus(pb.ClusterStatusRequest(),
                                                  timeout=2).workers) == 2,
                   "gateway", procs=[gw])
        # Another gateway's call (sent straight to the small worker) fills it.
        slow = pb_grpc.WorkerStub(grpc.insecure_channel(small)).Execute.future(
            slow_request(), timeout=120)
        time.sleep(0.5)
        went = []
        for i in range(6):
            resp = stub.Compute(quick_request(10 + i), timeout=30)
            assert float(codec.decode_response(resp)[0]) == 4.0 * (10 + i)
            went.append(resp.worker)
        print(f"\ncalls answered by {went} while {small} was full")
        assert not slow.done(), "the slow call ended too soon to tell"
        assert went == [roomy] * 6
        slow.cancel()
        # Free again, the small worker is used again (a refusal is no lasting mark).
        fresh = iter(range(100, 400))
        wait_until(lambda: stub.Compute(quick_request(next(fresh)), timeout=30).worker == small,
                   "the small worker used again", timeout=60)
    finally:
        stop(gw)
