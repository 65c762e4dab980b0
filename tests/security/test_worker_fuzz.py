"""Fuzzing the worker's door (issue 15, item 1): whatever bytes and metadata a process
that is not the gateway sends to a worker with a secret — any message, any method shape,
secrets that are wrong, truncated, extended or differently encoded — the answer is
UNAUTHENTICATED, and the worker keeps serving its gateway.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procs import start_redis, stop
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.peer import SECRET_KEY
from sectools import SECRET, Procs, as_tenant, sum_request, value, wait_for_workers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    redis = start_redis()
    procs = Procs(redis, tmp_path_factory.mktemp("fuzz"))
    try:
        gw = procs.gateway("--tokens", "t-dan=dan", secret=SECRET)
        worker = procs.worker(secret=SECRET)
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(gw.address))
        wait_for_workers(stub, 1, "t-dan")
        channel = grpc.insecure_channel(worker.address)
        yield stub, channel
        channel.close()
    finally:
        procs.close()
        stop(redis.proc)


_ASCII = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=80)
WRONG_SECRETS = st.one_of(
    _ASCII.filter(lambda s: s != SECRET),
    st.integers(0, len(SECRET) - 1).map(lambda n: SECRET[:n]),
    _ASCII.filter(bool).map(lambda s: SECRET + s),
    st.just(SECRET.upper()),
    st.just(" " + SECRET),
)
METADATA = st.lists(st.one_of(
    st.tuples(st.just(SECRET_KEY), WRONG_SECRETS),
    st.tuples(st.sampled_from(["x-tenant", "x-request-id", "authorization"]), _ASCII)),
    max_size=3)
METHODS = st.sampled_from(["unary", "stream"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=2048), metadata=METADATA, shape=METHODS)
def test_no_bytes_or_metadata_get_past_the_door(lab, payload, metadata, shape):
    _, channel = lab
    if any(k == SECRET_KEY for k, _ in metadata):
        # gRPC sends the first value of a key a server reads; keep the fuzzed one only.
        metadata = [(k, v) for k, v in metadata if k != SECRET_KEY] + \
            [next((k, v) for k, v in metadata if k == SECRET_KEY)]
    if shape == "unary":
        call = channel.unary_unary("/remotegrad.v1.Worker/Execute")
        run = lambda: call(payload, timeout=5, metadata=metadata)  # noqa: E731
    else:  # a method shape the worker does not have is still refused, never run
        call = channel.stream_stream("/remotegrad.v1.Worker/Execute")
        run = lambda: list(call(iter([payload]), timeout=5, metadata=metadata))  # noqa: E731
    with pytest.raises(grpc.RpcError) as e:
        run()
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, (e.value.code(), metadata)


def test_the_gateway_is_still_served_after_the_fuzzing(lab):
    stub, _ = lab
    x = np.arange(7, dtype=np.float32)
    assert value(stub.Compute(sum_request(x), metadata=as_tenant("t-dan"), timeout=30)) == 21.0
