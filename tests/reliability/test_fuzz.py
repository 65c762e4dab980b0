"""Hostile and broken input at the gateway, fuzzed with hypothesis: every request message
built from structured strategies (unknown ops, wrong arity, cycles, dangling and duplicate
ids, absurd shapes, dtype/byte mismatches, NaN and inf), random bytes at every method
through a raw channel, broken chunk streams, and the extreme cases one by one. Every
answer must be a clear status with a reason (never INTERNAL/UNKNOWN), the gateway must
keep serving, and its memory must stay bounded. The counts are printed (pytest -s)."""

from __future__ import annotations

import collections
import json
import math
import os

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import rss_bytes, start_cluster
from remotegrad.proto import catalog, codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode

pytestmark = pytest.mark.integration

MiB = 1 << 20
LIMITS = ["--max-tensor-bytes", str(16 * MiB), "--max-memory-bytes", str(64 * MiB),
          "--max-nodes", "100000", "--max-request-bytes", str(64 * MiB)]
CLEAR = {"OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION"}
OUTCOMES: collections.Counter = collections.Counter()
SEEN: list = []
# CI runs a fixed set of examples; RG_FUZZ_SCALE=10 runs ten times as many, fresh ones.
SCALE = int(os.environ.get("RG_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=150 * SCALE, deadline=None, derandomize=SCALE == 1,
                database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def gw():
    c = start_cluster(1, gateway_args=LIMITS)
    c.rss0 = rss_bytes(c.gateway.pid)
    ch = grpc.insecure_channel(c.address, options=[("grpc.max_send_message_length", -1)])
    c.stub = pb_grpc.GatewayStub(ch)
    c.raw = ch
    yield c
    total = sum(OUTCOMES.values())
    print("\n[fuzz] " + json.dumps({"inputs": total, "outcomes": dict(OUTCOMES),
                                    "gateway_rss_mib": [round(c.rss0 / MiB, 1), round(
                                        rss_bytes(c.gateway.pid) / MiB, 1)]}))
    ch.close()
    c.close()


def outcome(kind: str, fn) -> str:
    try:
        fn()
        code, details = "OK", ""
    except grpc.RpcError as e:
        code, details = e.code().name, e.details() or ""
    OUTCOMES[f"{kind}:{code}"] += 1
    assert code in CLEAR, f"{kind}: {code} {details!r}"
    assert code == "OK" or details.strip(), f"{kind}: {code} without a reason"
    return code


# --- strategies -------------------------------------------------------------------------

OPS = sorted(catalog.CATALOG) + ["frobnicate", "", "LEAF", "grad\x00"]
ATTR_NAMES = sorted({k for op in catalog.CATALOG.values() for k in op.attrs}) + ["zzz"]
dims = st.one_of(st.integers(0, 6), st.integers(-3, -1), st.integers(1 << 31, 1 << 62))
floats = st.floats(allow_nan=True, allow_infinity=True)
ints = st.one_of(st.integers(-10, 10), st.integers(-(1 << 63), (1 << 63) - 1))


@st.composite
def attr_values(draw):
    kind = draw(st.sampled_from(["f", "i", "b", "s", "ints", "floats", "none"]))
    v = pb.AttrValue()
    if kind == "f":
        v.f = draw(floats)
    elif kind == "i":
        v.i = draw(ints)
    elif kind == "b":
        v.b = draw(st.booleans())
    elif kind == "s":
        v.s = draw(st.sampled_from(["", "float32", "sum", "mean", "ij,jk->ik", "\x00\xff",
                                    "x" * 300]))
    elif kind == "ints":
        v.ints.SetInParent()
        v.ints.values.extend(draw(st.lists(st.one_of(dims, ints), max_size=6)))
    elif kind == "floats":
        v.floats.SetInParent()
        v.floats.values.extend(draw(st.lists(floats, max_size=4)))
    else:
        v.none = True
    return v


@st.composite
def tensors(draw):
    dtype = draw(st.sampled_from(list(catalog.DTYPES) + ["complex64", "object", ""]))
    shape = draw(st.lists(dims, max_size=4))
    size = draw(st.integers(0, 256))
    data = draw(st.binary(min_size=size, max_size=size))
    if draw(st.booleans()) and dtype in catalog.DTYPES and all(0 <= s <= 6 for s in shape):
        n = int(np.prod(shape, dtype=np.int64)) * catalog.ITEMSIZE[dtype]
        data = draw(st.binary(min_size=n, max_size=n))  # right length, any bits (NaN, inf)
    honest = draw(st.booleans()) and dtype in catalog.DTYPES and all(s >= 0 for s in shape)
    digest = codec.tensor_hash(dtype, tuple(shape), data) if honest else draw(
        st.sampled_from(["", "0" * 32, "nothex", "a" * 5000]))
    return pb.TensorData(dtype=dtype, shape=shape, data=data, hash=digest)


@st.composite
def compute_requests(draw):
    req = pb.ComputeRequest()
    leaves = draw(st.lists(tensors(), max_size=3))
    req.tensors.extend(draw(st.lists(st.sampled_from(leaves), max_size=3)) if leaves else [])
    ids = draw(st.lists(st.integers(-2, 15), max_size=10))
    for nid in ids:
        node = req.graph.nodes.add(id=nid, op=draw(st.sampled_from(OPS)))
        node.inputs.extend(draw(st.lists(st.integers(-2, 15), max_size=4)))
        if leaves and draw(st.booleans()):  # a leaf that names one of the tensors
            t = draw(st.sampled_from(leaves))
            node.op = "leaf"
            node.attrs["hash"].s, node.attrs["dtype"].s = t.hash, t.dtype
            node.attrs["shape"].ints.SetInParent()
            node.attrs["shape"].ints.values.extend(t.shape)
            continue
        for name in draw(st.lists(st.sampled_from(ATTR_NAMES), max_size=4)):
            node.attrs[name].CopyFrom(draw(attr_values()))
    req.targets.extend(draw(st.lists(st.sampled_from(ids) if ids else st.integers(-1, 3),
                                     max_size=3)))
    req.keep.extend(draw(st.lists(st.integers(-1, 15), max_size=2)))
    return req


def valid_request(seed: int = 0):
    """A graph the SDK would send: a gradient through tanh(x @ w)."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(
        (3, 2)).astype(np.float32)
    hx, hw = codec.array_hash(x), codec.array_hash(w)
    nodes = [WireNode(0, "leaf", (), {"hash": hx, "dtype": "float32", "shape": (4, 3)}),
             WireNode(1, "leaf", (), {"hash": hw, "dtype": "float32", "shape": (3, 2)}),
             WireNode(2, "matmul", (0, 1), {}), WireNode(3, "tanh", (2,), {}),
             WireNode(4, "sum", (3,), {"dim": None, "keepdim": False}),
             WireNode(5, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
             WireNode(6, "grad", (4, 5, 0), {"n": 1})]
    return codec.encode_request(nodes, [codec.encode_array(x, hx), codec.encode_array(w, hw)],
                                [4, 6])


@st.composite
def mutated_requests(draw):
    req = valid_request(draw(st.integers(0, 3)))
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["op", "input", "id", "attr", "target", "data", "shape",
                                     "dtype", "drop", "dup", "cycle"]))
        nodes = req.graph.nodes
        n = nodes[draw(st.integers(0, len(nodes) - 1))] if len(nodes) else None
        if n is None:
            break
        if what == "op":
            n.op = draw(st.sampled_from(OPS))
        elif what == "input":
            n.inputs.append(draw(st.integers(-1, 10)))
        elif what == "id":
            n.id = draw(st.integers(-1, 10))
        elif what == "attr":
            n.attrs[draw(st.sampled_from(ATTR_NAMES))].CopyFrom(draw(attr_values()))
        elif what == "target":
            req.targets.append(draw(st.integers(-1, 10)))
        elif what == "data" and req.tensors:
            t = req.tensors[0]
            t.data = draw(st.binary(max_size=64)) if draw(st.booleans()) else \
                np.full(len(t.data) // 4, draw(st.sampled_from([math.nan, math.inf])),
                        np.float32).tobytes()
        elif what == "shape" and req.tensors:
            req.tensors[0].shape[:] = draw(st.lists(dims, max_size=3))
        elif what == "dtype" and req.tensors:
            req.tensors[0].dtype = draw(st.sampled_from(list(catalog.DTYPES) + ["bogus"]))
        elif what == "drop":
            del nodes[draw(st.integers(0, len(nodes) - 1))]
        elif what == "dup":
            nodes.add().CopyFrom(n)
        elif what == "cycle":
            nodes[0].inputs.append(nodes[-1].id)
    return req


SMALL = st.integers(-2, 4)
STRINGS = ["float32", "float64", "int64", "bool", "sum", "mean", "none", "tanh", "constant",
           "reflect", "replicate", "circular", "floor", "trunc", "ij,jk->ik", "i,i->", "bogus"]
PLAUSIBLE = {
    "int": SMALL, "optional_int": st.one_of(st.none(), SMALL), "bool": st.booleans(),
    "str": st.sampled_from(STRINGS), "optional_str": st.one_of(st.none(),
                                                               st.sampled_from(STRINGS)),
    "ints": st.lists(SMALL, max_size=4).map(tuple),
    "optional_ints": st.one_of(st.none(), st.lists(SMALL, max_size=3).map(tuple)),
    "int_or_ints": st.one_of(SMALL, st.lists(SMALL, max_size=3).map(tuple)),
    "dims": st.one_of(st.none(), SMALL, st.lists(SMALL, max_size=3).map(tuple)),
    "padding": st.one_of(SMALL, st.lists(SMALL, max_size=2).map(tuple),
                         st.sampled_from(["same", "valid"])),
    "float": floats, "scalar": st.one_of(floats, SMALL, st.booleans()),
    "optional_scalar": st.one_of(st.none(), floats, SMALL),
}
OPDEFS = [op for name, op in sorted(catalog.CATALOG.items()) if name not in ("leaf", "grad")]


@st.composite
def plausible_requests(draw):
    """Graphs the catalog might accept: real ops with their own attributes, inputs that
    exist, honest leaves with small shapes and any values (NaN, inf), sometimes a
    gradient. They reach the shape rules, the lowering and the workers."""
    nodes, tensors = [], []
    for _ in range(draw(st.integers(1, 3))):
        dtype = draw(st.sampled_from(["float32", "float64", "int64", "bool"]))
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        values = draw(st.lists(floats, min_size=int(np.prod(shape, dtype=np.int64)),
                               max_size=int(np.prod(shape, dtype=np.int64))))
        with np.errstate(all="ignore"):
            arr = np.array(values, dtype=np.float64).reshape(shape)
            arr = np.nan_to_num(arr).astype(dtype) if dtype in ("int64", "bool") else \
                arr.astype(dtype)
        msg = codec.encode_array(arr)
        tensors.append(msg)
        nodes.append(WireNode(len(nodes), "leaf", (), {"hash": msg.hash, "dtype": dtype,
                                                       "shape": shape}))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(OPDEFS))
        nin = op.nin if op.nin >= 0 else draw(st.integers(1, 3))
        inputs = tuple(draw(st.lists(st.integers(0, len(nodes) - 1), min_size=nin,
                                     max_size=nin)))
        attrs = {}
        for name, (kind, default) in op.attrs.items():
            if isinstance(default, object) and type(default) is object or draw(st.booleans()):
                attrs[name] = draw(PLAUSIBLE.get(kind, st.none()))
        nodes.append(WireNode(len(nodes), op.name, inputs, attrs))
    targets = [len(nodes) - 1]
    if draw(st.booleans()):  # d(sum of the last node)/d(first leaf)
        last = len(nodes) - 1
        nodes.append(WireNode(len(nodes), "sum", (last,), {"dim": None, "keepdim": False}))
        nodes.append(WireNode(len(nodes), "full", (), {"shape": (), "value": 1.0,
                                                       "dtype": "float32"}))
        nodes.append(WireNode(len(nodes), "grad", (len(nodes) - 2, len(nodes) - 1, 0),
                              {"n": 1}))
        targets.append(len(nodes) - 1)
    try:
        return codec.encode_request(nodes, tensors, targets)
    except Exception:  # noqa: BLE001  (an attribute the wire cannot carry)
        return codec.encode_request(nodes[: len(tensors)], tensors, [0])


@st.composite
def chunk_streams(draw):
    data = draw(st.binary(max_size=512))
    msg = codec.encode_array(np.frombuffer(data[: len(data) // 4 * 4], np.float32))
    chunks = list(codec.to_chunks(msg, size=draw(st.integers(1, 128))))
    what = draw(st.sampled_from(["truncate", "extend", "offset", "header", "hash", "empty",
                                 "huge", "ok"]))
    if what == "truncate" and len(chunks) > 1:
        chunks = chunks[:-1]
    elif what == "extend":
        chunks.append(pb.TensorChunk(offset=len(msg.data), data=b"\x00" * 64))
    elif what == "offset" and chunks:
        chunks[-1].offset += draw(st.integers(-5, 5)) or 1
    elif what == "header":
        chunks[0].total_bytes = draw(ints)
        chunks[0].shape[:] = draw(st.lists(dims, max_size=3))
    elif what == "hash":
        chunks[0].hash = "f" * 32
    elif what == "empty":
        chunks = []
    elif what == "huge":  # announces 2**40 bytes: refused from the header, nothing allocated
        chunks[0].shape[:] = [1 << 38]
        chunks[0].total_bytes = 1 << 40
    return chunks


# --- the fuzz tests ----------------------------------------------------------------------

@FUZZ
@given(req=compute_requests())
def test_fuzz_compute_structured(gw, req):
    outcome("compute", lambda: gw.stub.Compute(req, timeout=20))


@settings(FUZZ, max_examples=300 * SCALE)
@given(req=plausible_requests())
def test_fuzz_compute_plausible_graphs(gw, req):
    outcome("plausible", lambda: gw.stub.Compute(req, timeout=20))


@FUZZ
@given(req=mutated_requests())
def test_fuzz_compute_mutations_of_a_valid_gradient(gw, req):
    outcome("mutated", lambda: gw.stub.Compute(req, timeout=20))


@settings(FUZZ, max_examples=100 * SCALE)
@given(hashes=st.lists(st.text(max_size=80), max_size=20))
def test_fuzz_has_tensors(gw, hashes):
    outcome("has", lambda: gw.stub.HasTensors(pb.HasTensorsRequest(hashes=hashes), timeout=10))


@settings(FUZZ, max_examples=100 * SCALE)
@given(digest=st.text(max_size=200))
def test_fuzz_fetch_tensor(gw, digest):
    outcome("fetch", lambda: list(gw.stub.FetchTensor(pb.FetchTensorRequest(hash=digest),
                                                     timeout=10)))


@FUZZ
@given(chunks=chunk_streams())
def test_fuzz_put_tensor_streams(gw, chunks):
    outcome("put", lambda: gw.stub.PutTensor(iter(chunks), timeout=10))


METHODS = [("/remotegrad.v1.Gateway/Compute", "uu"), ("/remotegrad.v1.Gateway/HasTensors", "uu"),
           ("/remotegrad.v1.Gateway/ClusterStatus", "uu"),
           ("/remotegrad.v1.Gateway/PutTensor", "su"),
           ("/remotegrad.v1.Gateway/FetchTensor", "us")]


@settings(FUZZ, max_examples=200 * SCALE)
@given(method=st.sampled_from(METHODS), blobs=st.lists(st.binary(max_size=300), min_size=1,
                                                         max_size=3))
def test_fuzz_random_bytes_at_every_method(gw, method, blobs):
    """Raw bytes, no protobuf on the client side: identity serializers."""
    path, kind = method
    ident = dict(request_serializer=None, response_deserializer=None)
    if kind == "uu":
        call = lambda: gw.raw.unary_unary(path, **ident)(blobs[0], timeout=10)
    elif kind == "su":
        call = lambda: gw.raw.stream_unary(path, **ident)(iter(blobs), timeout=10)
    else:
        call = lambda: list(gw.raw.unary_stream(path, **ident)(blobs[0], timeout=10))
    outcome("bytes", call)


# --- the named extremes -------------------------------------------------------------------

def _code(fn):
    try:
        fn()
        return "OK", ""
    except grpc.RpcError as e:
        return e.code().name, e.details()


def test_billion_element_shape_refused_from_the_shape_alone(gw):
    before = rss_bytes(gw.gateway.pid)
    full = [WireNode(0, "full", (), {"shape": (1000, 1000, 1000), "value": 1.0,
                                     "dtype": "float32"}),
            WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    code, details = _code(lambda: gw.stub.Compute(codec.encode_request(full, [], [1]),
                                                  timeout=10))
    assert code == "RESOURCE_EXHAUSTED" and "exceeds the limit" in details, details
    # A leaf announcing a billion elements with no bytes: refused before any allocation.
    leaf = pb.TensorData(dtype="float32", shape=[10**9], hash="0" * 32)
    nodes = [WireNode(0, "leaf", (), {"hash": "0" * 32, "dtype": "float32", "shape": (10**9,)})]
    code2, details2 = _code(lambda: gw.stub.Compute(codec.encode_request(nodes, [leaf], [0]),
                                                    timeout=10))
    assert code2 in ("RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"), details2
    assert rss_bytes(gw.gateway.pid) - before < 64 * MiB
    OUTCOMES[f"billion:{code}"] += 1
    OUTCOMES[f"billion-leaf:{code2}"] += 1


def test_million_node_graph_refused_over_the_limit(gw):
    req = pb.ComputeRequest()
    req.graph.nodes.add(id=0, op="full").attrs["value"].f = 1.0
    nodes = req.graph.nodes
    for i in range(1, 1_000_000):
        nodes.add(id=i, op="neg", inputs=[i - 1])
    req.targets.append(999_999)
    code, details = _code(lambda: gw.stub.Compute(req, timeout=30))
    assert code == "RESOURCE_EXHAUSTED" and "limit is 100000" in details, details
    OUTCOMES[f"million-nodes:{code}"] += 1


def test_deep_chain_and_deep_gradient_are_computed(gw):
    """6,000 nodes deep, six times Python's recursion limit (the engine is iterative), with
    its gradient: as deep as this gateway's 64 MiB estimate admits (each node counts its
    built and lowered graph, ~9 KiB with its gradient's)."""
    x = np.float32(0.5)
    h = codec.array_hash(np.asarray(x))
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": ()})]
    for i in range(1, 6_000):
        nodes.append(WireNode(i, "neg", (i - 1,), {}))
    n = len(nodes)
    nodes += [WireNode(n, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
              WireNode(n + 1, "grad", (n - 1, n, 0), {"n": 1})]
    resp = gw.stub.Compute(codec.encode_request(nodes, [codec.encode_array(np.asarray(x), h)],
                                                [n - 1, n + 1]), timeout=60)
    value, grad = codec.decode_response(resp)
    assert float(value) == -0.5 and float(grad) == -1.0  # 5,999 negations
    OUTCOMES["deep-chain:OK"] += 1


def test_oversized_message_refused(gw):
    req = pb.ComputeRequest(tensors=[pb.TensorData(dtype="uint8", shape=[65 * MiB],
                                                   data=b"\x00" * (65 * MiB))])
    code, details = _code(lambda: gw.stub.Compute(req, timeout=30))
    assert code == "RESOURCE_EXHAUSTED", details
    OUTCOMES[f"oversized:{code}"] += 1


def test_empty_graph_and_nan_inf_values(gw):
    code, details = _code(lambda: gw.stub.Compute(pb.ComputeRequest(), timeout=10))
    assert code == "INVALID_ARGUMENT" and details, details
    x = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (4,)}),
             WireNode(1, "exp", (0,), {})]
    (out,) = codec.decode_response(gw.stub.Compute(
        codec.encode_request(nodes, [codec.encode_array(x, h)], [1]), timeout=10))
    np.testing.assert_array_equal(out, np.exp(x))
    OUTCOMES["empty:INVALID_ARGUMENT"] += 1
    OUTCOMES["nan-inf:OK"] += 1


def test_gradient_that_would_not_fit_is_refused_up_front(gw):
    """The forward fits the 64 MiB limit; its gradient (lowered on the gateway from shapes)
    does not: RESOURCE_EXHAUSTED before any worker runs it."""
    n = 1700  # 11 MiB per float32 matrix: forward ~33 MiB, with its gradient ~77 MiB
    x = pb.TensorData(dtype="float32", shape=[n, n], hash="1" * 32)
    nodes = [WireNode(0, "leaf", (), {"hash": x.hash, "dtype": "float32", "shape": (n, n)})]
    h = 0
    for _ in range(3):
        nodes.append(WireNode(len(nodes), "matmul", (h, 0), {}))
        nodes.append(WireNode(len(nodes), "tanh", (len(nodes) - 1,), {}))
        h = len(nodes) - 1
    nodes.append(WireNode(len(nodes), "sum", (h,), {"dim": None, "keepdim": False}))
    out = len(nodes) - 1
    forward = codec.encode_request(nodes, [], [out])
    nodes += [WireNode(out + 1, "full", (), {"shape": (), "value": 1.0, "dtype": "float32"}),
              WireNode(out + 2, "grad", (out, out + 1, 0), {"n": 1})]
    backward = codec.encode_request(nodes, [], [out + 2])
    calls = gw.metric("remotegrad_calls_total", method="Compute")
    code_f, details_f = _code(lambda: gw.stub.Compute(forward, timeout=10))
    assert code_f == "FAILED_PRECONDITION", details_f  # passed the size checks; no bytes held
    code_b, details_b = _code(lambda: gw.stub.Compute(backward, timeout=10))
    assert code_b == "RESOURCE_EXHAUSTED" and "gradients included" in details_b, details_b
    assert gw.metric("remotegrad_calls_total", method="Compute") == calls + 2
    OUTCOMES[f"gradient-too-big:{code_b}"] += 1


def test_still_serving_and_memory_bounded_after_all_that(gw):
    resp = gw.stub.Compute(valid_request(9), timeout=10)
    assert len(resp.results) == 2
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    h = health_pb2_grpc.HealthStub(gw.raw).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert h.status == health_pb2.HealthCheckResponse.SERVING
    assert gw.gateway.popen.poll() is None and all(w.popen.poll() is None for w in gw.workers)
    assert rss_bytes(gw.gateway.pid) - gw.rss0 < 256 * MiB
