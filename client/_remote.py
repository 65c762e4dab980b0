"""A session with a cluster: ComputeRequests over gRPC, large tensors streamed, retries.

It asks which hashes the cluster already holds, streams up only the missing ones, and
streams down results the gateway answered by reference. `held` is what it knows its
cluster holds. Imported when a cluster is first wanted: `import remotegrad` loads no gRPC.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import random
import re
import threading
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor

import grpc

from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

from ._errors import ClusterUnavailableError, from_rpc_error
from ._node import Node
from ._request import walk
from ._session import MissingTensorsError, Session

log = logging.getLogger("remotegrad.client")

# round_robin: a name with several addresses (a list, or a DNS name such as a Kubernetes
# headless Service) spreads calls over every ready gateway; gRPC's default, pick_first,
# would send all of a client's calls to one of them.
_RETRY_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [{
    "name": [{"service": "remotegrad.v1.Gateway"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "2s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
}]})


class Retry:
    """When a call is tried again: on UNAVAILABLE (the gateway restarting, a connection
    lost) or CANCELLED, with jittered exponential backoff, until the call's deadline or
    `window` seconds, whichever is first. Calls are pure, so a retry is always safe. A
    server that says "don't" (gRPC's pushback metadata, negative) is not retried:
    UNAVAILABLE for "no workers" is an answer, and it comes fast."""

    # CANCELLED too: a call that reaches a gateway just as it begins a graceful stop is
    # answered CANCELLED by gRPC core, not UNAVAILABLE (grpc/grpc#41785); the SDK never
    # cancels a call itself, and calls are pure.
    CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})

    def __init__(self, window: float = 30.0, initial: float = 0.05, maximum: float = 1.0,
                 multiplier: float = 2.0) -> None:
        self.window, self.initial, self.maximum, self.multiplier = (window, initial, maximum,
                                                                    multiplier)

    def retryable(self, err: grpc.RpcError) -> bool:
        if err.code() not in self.CODES:
            return False
        trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
        for key, value in trailers or ():
            if key == "grpc-retry-pushback-ms" and value.strip().startswith("-"):
                return False
        return True

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.maximum, self.initial * self.multiplier ** attempt))


class RemoteSession(Session):
    stream_threshold = 4 << 20

    def __init__(self, address: str, token: str | None = None, tls=None,
                 timeout: float = 120.0, retry: Retry | None = None) -> None:
        """`tls`: True (the system's CAs), a path to a PEM CA bundle, or
        grpc.ChannelCredentials (e.g. with a client certificate for mutual TLS)."""
        super().__init__()
        self.address, self.timeout, self.retry = address, timeout, retry or Retry()
        options = [("grpc.enable_retries", 1), ("grpc.service_config", _RETRY_CONFIG),
                   ("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", -1),
                   # Reconnect soon after a gateway restart (gRPC's default waits 1s, 1.6s, ...).
                   ("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]
        if tls:
            if isinstance(tls, grpc.ChannelCredentials):
                creds = tls
            elif isinstance(tls, (str, os.PathLike)):
                with open(tls, "rb") as f:
                    creds = grpc.ssl_channel_credentials(f.read())
            else:
                creds = grpc.ssl_channel_credentials()
            self._channel = grpc.secure_channel(address, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stub = pb_grpc.GatewayStub(self._channel)
        self._pool: ThreadPoolExecutor | None = None
        self._later = None  # (future, done) of what evaluate_later sent
        self._kept = Kept()

    def _call(self, method, request, request_id: str = "", consume=None):
        """One call with the deadline and metadata, retried per `self.retry`; errors become
        the SDK's exceptions. `request` may be a function making the request (a fresh
        chunk stream for each attempt); `consume` reads a streamed answer."""
        metadata = self._metadata + (("x-request-id", request_id),)
        start = time.monotonic()
        deadline = start + self.timeout
        window_end = start + min(self.timeout, self.retry.window)
        attempt = 0
        while True:
            now = time.monotonic()
            # After a failure, wait for the gateway to come back instead of failing fast.
            retrying = attempt > 0
            limit = min(deadline, window_end) if retrying else deadline
            try:
                answer = method(request() if callable(request) else request,
                                timeout=max(0.001, limit - now), metadata=metadata,
                                wait_for_ready=retrying or None)
                return consume(answer) if consume else answer
            except grpc.RpcError as err:
                code = err.code()
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    raise MissingTensorsError(err.details()) from None
                now = time.monotonic()
                if retrying and code == grpc.StatusCode.DEADLINE_EXCEEDED and limit < deadline:
                    raise ClusterUnavailableError(
                        f"remotegrad cluster at {self.address} is unavailable: no answer "
                        f"for {now - start:.0f}s of retrying") from None
                if not self.retry.retryable(err) or now >= min(deadline, window_end):
                    raise from_rpc_error(err, self.address) from None
                log.info("%s: %s; retrying", self.address, code.name)
                time.sleep(min(self.retry.backoff(attempt), max(0.0, deadline - now)))
                attempt += 1

    def evaluate(self, nodes: list, keep: int) -> list[tuple]:
        try:
            return self._exchange(*self._request(nodes, keep), nodes, keep)
        except MissingTensorsError:  # the cluster lost leaves it held: send their bytes again
            self.held.clear()
        try:
            return self._exchange(*self._request(nodes, keep), nodes, keep)
        except MissingTensorsError as e:
            raise MissingTensorsError(self._kept.describe_lost(str(e))) from None

    def evaluate_later(self, nodes: list, done) -> None:
        """The request is built here (it reads the graph); a thread sends it and reads the
        answer, so the caller records its next step meanwhile."""
        self.settle()
        request = self._request(nodes, len(nodes))
        self._later = (self._sender().submit(self._exchange, *request, nodes, len(nodes)),
                       done)

    def _request(self, nodes: list, keep: int):
        req, uploads = build_request(nodes, keep, self.held, self.stream_threshold)
        req.release.extend(self._kept.released())  # the cluster may drop their copies
        return req, uploads

    def settle(self) -> None:
        if self._later is None:
            return
        (future, done), self._later = self._later, None
        try:
            results = future.result()
        except Exception as e:  # noqa: BLE001
            # The updates stay pending: the next read sends them again (and says what is
            # wrong, if they themselves fail).
            log.debug("sending pending updates failed: %s", e)
            self.held.clear()
            return
        done(results)

    def _sender(self):
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="remotegrad-send")
        return self._pool

    def _exchange(self, req, uploads, nodes: list, keep: int) -> list[tuple]:
        """Send one request (its large leaves first); each node's (value, name)."""
        if uploads:
            self.upload(uploads)
        out = []
        for i, (node, msg) in enumerate(zip(nodes, self.compute(req).results)):
            if not msg.data and node.meta.nbytes:  # answered by reference
                self.held.add(msg.hash)
                if i < keep:  # it stays in the cluster, named by its hash
                    self._kept.hold(node, msg.hash)
                    out.append((None, msg.hash))
                    continue
                msg = self.fetch(msg.hash)
            value = codec.decode_array(msg)
            value.flags.writeable = False
            out.append((value, msg.hash or None))
        return out

    def compute(self, req: pb.ComputeRequest) -> pb.ComputeResponse:
        return self._call(self._stub.Compute, req, request_id=req.request_id)

    def upload(self, messages: list[pb.TensorData]) -> None:
        """Stream up the tensors the cluster does not hold yet."""
        have = self._call(self._stub.HasTensors,
                          pb.HasTensorsRequest(hashes=[m.hash for m in messages])).present
        for msg, present in zip(messages, have):
            if not present:
                self._call(self._stub.PutTensor, lambda msg=msg: codec.to_chunks(msg))
            self.held.add(msg.hash)

    def fetch(self, digest: str) -> pb.TensorData:
        return self._call(self._stub.FetchTensor, pb.FetchTensorRequest(hash=digest),
                          consume=lambda chunks: codec.from_chunks(chunks, max_bytes=1 << 62))

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._channel.close()


class Kept:
    """The names this session holds kept tensors by, counted (two nodes may hold one
    name), so that the cluster is told (ComputeRequest.release) once none holds it. A
    node's finaliser only appends its name to a deque: it runs inside garbage collection,
    at any point of any thread, and must take no lock."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        self._what: dict[str, str] = {}  # name -> "float32 [32, 32]", for error messages
        self._dropped: collections.deque = collections.deque()
        self._lock = threading.Lock()

    def hold(self, node, name: str) -> None:
        with self._lock:
            self._count[name] = self._count.get(name, 0) + 1
            self._what[name] = f"{node.meta.dtype} {list(node.meta.shape)}"
        weakref.finalize(node, self._dropped.append, name)

    def released(self, most: int = 4096) -> list[str]:
        """The names no node holds any more (at most `most`; the rest next time)."""
        out = []
        with self._lock:
            while self._dropped and len(out) < most:
                name = self._dropped.popleft()
                left = self._count.get(name, 0) - 1
                if left > 0:
                    self._count[name] = left
                else:
                    self._count.pop(name, None)
                    self._what.pop(name, None)
                    out.append(name)
        return out

    def describe_lost(self, details: str) -> str:
        """The cluster's 'not held' message, saying which of the names it gives are
        tensors this session kept there (whose values exist nowhere else)."""
        with self._lock:
            lost = [f"{d} ({self._what[d]})" for d in re.findall(r"[0-9a-f]{32}", details)
                    if d in self._what]
        if not lost:
            return details
        return (f"the cluster no longer holds {len(lost)} tensor(s) this session kept there "
                f"(parameters or optimiser state, held by the cluster only): "
                f"{', '.join(lost)}; their values are gone (the cluster or its store was "
                f"restarted, and no durable copy survived): load or recompute them. "
                f"[{details}]")


def build_request(targets: list[Node], keep: int, held: set[str], stream_threshold: float):
    """The ComputeRequest for `targets` (the first `keep` of which stay in the cluster),
    and the large leaves to stream up before it. `held`: the hashes the cluster holds."""
    inline: list[pb.TensorData] = []
    uploads: list[pb.TensorData] = []
    slots: dict[str, int] = {}

    def attrs(node: Node) -> dict:
        if node.hash is None:
            node.hash = codec.array_hash(node.value)
        out = {"hash": node.hash, "dtype": node.meta.dtype, "shape": node.meta.shape}
        slot = slots[node.hash] = slots.get(node.hash, -1) + 1
        if slot:
            out["tag"] = str(slot)
        elif node.hash not in held and node.value is not None:
            msg = codec.encode_array(node.value, node.hash)
            (uploads if node.meta.nbytes > stream_threshold else inline).append(msg)
        return out

    nodes, ids = walk(targets, attrs)
    req = codec.encode_request(nodes, inline, ids, request_id=uuid.uuid4().hex)
    req.keep.extend(ids[:keep])
    return req, uploads
