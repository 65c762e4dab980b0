"""The small policy objects on their own: token → tenant, the rate limiter, the SDK's
retry, boolean settings, the peak-memory estimate, cancellation."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import grpc
import numpy as np
import pytest

from remotegrad.proto.codec import WireNode
from remotegrad.server.config import boolean
from remotegrad.server.estimate import estimate, peak_bytes
from remotegrad.server.security import Auth, RateLimiter
from remotegrad.worker import engine
from remotegrad.worker.compute import CallCancelled, Cancellation


def test_tokens_file_and_variable(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# operators\nabc==alice\n\n  def = bob \n")
    auth = Auth.from_args(SimpleNamespace(tokens_file=str(f), tokens="ghi=carol,jkl=carol"))
    bearer = lambda t: (("authorization", f"Bearer {t}"),)
    assert auth.tenant(bearer("abc=")) == "alice"  # tokens may end in '=' (base64)
    assert auth.tenant(bearer("def")) == "bob"
    assert auth.tenant(bearer("jkl")) == "carol"
    assert auth.tenant(bearer("nope")) is None and auth.tenant(()) is None
    assert auth.tenant((("authorization", "abc="),)) is None  # no scheme
    assert Auth().tenant(()) == "default"
    with pytest.raises(ValueError):
        Auth({"t": "bad:tenant"})  # would break out of its key namespace
    with pytest.raises(ValueError):
        Auth.from_args(SimpleNamespace(tokens_file="", tokens="no-equals-sign"))


def test_rate_limiter_refills():
    lim = RateLimiter(rate=10, burst=3)
    assert [lim.allow("a") for _ in range(4)] == [True, True, True, False]
    assert lim.allow("b")  # per tenant
    time.sleep(0.25)
    assert lim.allow("a")


def test_boolean_settings():
    assert boolean("true") and boolean("1") and boolean("on") and not boolean("false")
    assert not boolean("") and not boolean("0")
    with pytest.raises(ValueError):
        boolean("maybe")


def test_sdk_retry_respects_pushback():
    from remotegrad._remote import Retry

    class Err(grpc.RpcError):
        def __init__(self, code, trailers=()):
            self._code, self._trailers = code, trailers

        def code(self):
            return self._code

        def trailing_metadata(self):
            return self._trailers

    r = Retry()
    assert r.retryable(Err(grpc.StatusCode.UNAVAILABLE))
    assert not r.retryable(Err(grpc.StatusCode.UNAVAILABLE,
                               (("grpc-retry-pushback-ms", "-1"),)))
    assert not r.retryable(Err(grpc.StatusCode.INVALID_ARGUMENT))
    assert all(0 <= r.backoff(k) <= r.maximum for k in range(20))


def _chain(n: int, steps: int, grad: bool):
    nodes = [WireNode(0, "leaf", (), {"hash": "x", "dtype": "float32", "shape": (n, n)})]
    for _ in range(steps):
        nodes.append(WireNode(len(nodes), "tanh", (len(nodes) - 1,), {}))
    out = len(nodes) - 1
    if not grad:
        return nodes, [out]
    nodes.append(WireNode(len(nodes), "sum", (out,), {"dim": None, "keepdim": False}))
    nodes.append(WireNode(len(nodes), "full", (), {"shape": (), "value": 1.0,
                                                   "dtype": "float32"}))
    nodes.append(WireNode(len(nodes), "grad", (len(nodes) - 2, len(nodes) - 1, 0), {"n": 1}))
    return nodes, [len(nodes) - 1]


def test_peak_counts_only_live_tensors_and_gradients_cost_more():
    mib = 1 << 20
    nodes, t = _chain(512, 10, grad=False)  # 1 MiB each; two alive at a time
    g, gt = engine.build(nodes, t)
    assert peak_bytes(g, gt) == 2 * mib
    nodes, t = _chain(512, 10, grad=True)  # backward keeps every tanh output alive
    biggest, peak = estimate(nodes, t)
    assert biggest.nbytes == mib and peak >= 10 * mib


def test_cancellation_stops_between_steps_and_never_leaks_into_later_code():
    c = Cancellation()
    steps = []

    def work():
        for i in range(10_000):
            steps.append(i)
            np.ones(1000).sum()
        return "finished"

    result = []

    def run():
        try:
            result.append(c.run(work))
        except CallCancelled:
            result.append("cancelled")
        time.sleep(0.05)  # an exception pending here would surface now
        result.append("after")

    th = threading.Thread(target=run)
    th.start()
    while not steps:
        time.sleep(0.001)
    c.cancel()
    th.join()
    assert result == ["cancelled", "after"] and len(steps) < 10_000
    done = Cancellation()
    assert done.run(lambda: 7) == 7
    done.cancel()  # after the block: nothing is raised anywhere
    time.sleep(0.05)
    with pytest.raises(CallCancelled):
        done.run(lambda: 8)  # cancelled before it starts
