"""Where graphs go: `connect()` picks a cluster (or the in-process engine) and
`materialize()` turns the nodes a value needs into one ComputeRequest.

A leaf whose bytes this session has already sent travels by hash only; if the cluster has
since lost it, the gateway answers FAILED_PRECONDITION naming the missing hashes and the
request is sent once more with them inline.
"""

from __future__ import annotations

import json
import logging
import os
import uuid

import grpc
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.codec import WireNode

from ._errors import ClusterUnavailableError, from_rpc_error
from ._node import Node

log = logging.getLogger("remotegrad.client")

DEFAULT_ADDRESS = "localhost:50051"
_RETRY_CONFIG = json.dumps({"methodConfig": [{
    "name": [{"service": "remotegrad.v1.Gateway"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "2s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
}]})


class MissingTensorsError(Exception):
    """The cluster no longer holds some leaves this session sent before."""


class Session:
    """Sends ComputeRequests; remembers which leaf hashes the cluster was given."""

    address = "local"

    def __init__(self) -> None:
        self.sent: set[str] = set()

    def compute(self, req: pb.ComputeRequest) -> pb.ComputeResponse:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalSession(Session):
    """The worker engine in this process: a notebook needs no cluster."""

    def __init__(self) -> None:
        super().__init__()
        from remotegrad.worker.compute import MemoryTensorStore, compute
        self._compute, self._store = compute, MemoryTensorStore()

    def compute(self, req: pb.ComputeRequest) -> pb.ComputeResponse:
        from remotegrad.worker.compute import MissingTensorError
        try:
            return self._compute(req, self._store)
        except MissingTensorError as e:
            raise MissingTensorsError(str(e)) from None


class RemoteSession(Session):
    def __init__(self, address: str, token: str | None = None, tls=None,
                 timeout: float = 120.0) -> None:
        super().__init__()
        self.address, self.timeout = address, timeout
        options = [("grpc.enable_retries", 1), ("grpc.service_config", _RETRY_CONFIG),
                   ("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", -1)]
        if tls:
            creds = (tls if isinstance(tls, grpc.ChannelCredentials)
                     else grpc.ssl_channel_credentials())
            self._channel = grpc.secure_channel(address, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stub = pb_grpc.GatewayStub(self._channel)

    def compute(self, req: pb.ComputeRequest) -> pb.ComputeResponse:
        metadata = self._metadata + (("x-request-id", req.request_id),)
        try:
            return self._stub.Compute(req, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise MissingTensorsError(err.details()) from None
            raise from_rpc_error(err, self.address) from None

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False

    def close(self) -> None:
        self._channel.close()


_current: Session | None = None


def connect(address: str | None = None, *, token: str | None = None, tls=None,
            timeout: float = 120.0) -> Session:
    """Use the cluster at `address` (default `$REMOTEGRAD_ADDR`, else localhost:50051), or
    `"local"` for the engine in this process. Raises if a cluster cannot be reached."""
    global _current
    address = address or os.environ.get("REMOTEGRAD_ADDR") or DEFAULT_ADDRESS
    token = token or os.environ.get("REMOTEGRAD_TOKEN") or None
    if address == "local":
        session: Session = LocalSession()
    else:
        session = RemoteSession(address, token=token, tls=tls, timeout=timeout)
        if not session.ping(timeout=5.0):
            session.close()
            raise ClusterUnavailableError(f"cannot reach remotegrad cluster at {address}")
    if _current is not None:
        _current.close()
    _current = session
    return session


def current() -> Session:
    """The session in use; on first use, `$REMOTEGRAD_ADDR` if set, else a cluster on
    localhost:50051 if one answers, else the in-process engine."""
    global _current
    if _current is None:
        if os.environ.get("REMOTEGRAD_ADDR"):
            connect()
        else:
            probe = RemoteSession(DEFAULT_ADDRESS)
            if probe.ping(timeout=0.3):
                _current = probe
            else:
                probe.close()
                log.info("no cluster at %s; computing in this process", DEFAULT_ADDRESS)
                _current = LocalSession()
    return _current


def build_request(targets: list[Node], sent: set[str]) -> tuple[pb.ComputeRequest, list[str]]:
    """Number the nodes the targets need (inputs first) and collect the leaf bytes to send.
    Known values become leaves, except on autograd paths whose history a gradient needs."""
    ids: dict[int, int] = {}
    nodes: list[WireNode] = []
    tensors: list[pb.TensorData] = []
    hashes: list[str] = []
    stack: list[tuple[Node, bool]] = [(t, False) for t in reversed(targets)]
    while stack:
        node, ready = stack.pop()
        if id(node) in ids:
            continue
        if node.value is not None and (node.op == "leaf" or not node.tracked):
            if node.hash is None:
                node.hash = codec.array_hash(node.value)
            ids[id(node)] = len(nodes)
            nodes.append(WireNode(len(nodes), "leaf", (), {
                "hash": node.hash, "dtype": node.meta.dtype, "shape": node.meta.shape}))
            if node.hash not in sent:
                tensors.append(codec.encode_array(node.value, node.hash))
            hashes.append(node.hash)
        elif ready:
            ids[id(node)] = len(nodes)
            nodes.append(WireNode(len(nodes), node.op, tuple(ids[id(i)] for i in node.inputs),
                                  node.attrs))
        else:
            stack.append((node, True))
            stack.extend((i, False) for i in reversed(node.inputs) if id(i) not in ids)
    req = codec.encode_request(nodes, tensors, [ids[id(t)] for t in targets],
                               request_id=uuid.uuid4().hex)
    return req, hashes


def materialize(nodes: list[Node]) -> None:
    """Compute the nodes' values (and their batch siblings') in one round trip."""
    targets: list[Node] = []
    seen: set[int] = set()
    for n in nodes:
        for m in (n.batch or [n]) if n.batch else [n]:
            if m.value is None and id(m) not in seen:
                seen.add(id(m))
                targets.append(m)
        if id(n) not in seen and n.value is None:
            seen.add(id(n))
            targets.append(n)
    if not targets:
        return
    session = current()
    req, hashes = build_request(targets, session.sent)
    try:
        resp = session.compute(req)
    except MissingTensorsError:  # evicted from the cluster's store: send the bytes again
        session.sent.clear()
        req, hashes = build_request(targets, session.sent)
        resp = session.compute(req)
    session.sent.update(hashes)
    for node, arr in zip(targets, codec.decode_response(resp)):
        arr.flags.writeable = False
        node.value = arr
        node.batch = None
