"""Where graphs go: `connect()` picks a cluster (or the in-process engine).

A Session evaluates client nodes: `evaluate(nodes, keep)` gives each node's value (and the
name the cluster holds it under). The embedded session hands the graph to the engine as
Python objects, leaves named by identity (see _request). A remote session sends
ComputeRequests and moves large tensors: it asks which hashes the cluster already holds,
streams up only the missing ones, and streams down results the gateway answered by
reference. `held` is what a remote session knows its cluster holds.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc

from ._errors import ClusterUnavailableError, from_engine_error, from_rpc_error
from ._request import build_request, by_identity

log = logging.getLogger("remotegrad.client")

DEFAULT_ADDRESS = "localhost:50051"
_RETRY_CONFIG = json.dumps({"methodConfig": [{
    "name": [{"service": "remotegrad.v1.Gateway"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "2s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
}]})


class Retry:
    """When a call is tried again: on UNAVAILABLE (the gateway restarting, a connection
    lost) or CANCELLED, with jittered exponential backoff, until the call's deadline or
    `window` seconds, whichever is first. Calls are pure, so a retry is always safe. A server that
    says "don't" (gRPC's pushback metadata, negative) is not retried: UNAVAILABLE for "no
    workers" is an answer, and it comes fast."""

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


class MissingTensorsError(Exception):
    """The cluster no longer holds some leaves this session sent before."""


class Session:
    """Evaluates client nodes, here or in a cluster."""

    address = "local"
    stream_threshold = float("inf")  # leaves larger than this are streamed up first

    def __init__(self) -> None:
        self.held: set[str] = set()

    def evaluate(self, nodes: list, keep: int) -> list[tuple]:
        """(value, name) of each node: the first `keep` stay where they were computed
        (their value may then be None: the cluster holds them under `name`)."""
        raise NotImplementedError

    def evaluate_later(self, nodes: list, done) -> None:
        """Evaluate `nodes` (all kept) and hand the results to `done` at the next settle()
        (here: at once; a remote session sends them without waiting for the answer)."""
        done(self.evaluate(nodes, len(nodes)))

    def settle(self) -> None:
        """Wait for what evaluate_later sent; apply its results."""

    def compute(self, req: pb.ComputeRequest) -> pb.ComputeResponse:
        raise NotImplementedError

    def upload(self, messages: list[pb.TensorData]) -> None:
        raise NotImplementedError

    def fetch(self, digest: str) -> pb.TensorData:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalSession(Session):
    """The worker engine in this process: a notebook needs no cluster."""

    def __init__(self) -> None:
        super().__init__()
        from ._engine import MemoryTensorStore, MissingTensorError, compute, evaluate
        self._compute, self._store, self._missing = compute, MemoryTensorStore(), MissingTensorError
        self._evaluate = evaluate

    def evaluate(self, nodes: list, keep: int) -> list[tuple]:
        graph, targets, arrays = by_identity(nodes)
        values = self._engine(self._evaluate, graph, targets,
                              lambda name: arrays[int(name)])
        for v in values:
            v.flags.writeable = False
        return [(v, None) for v in values]

    def compute(self, req: pb.ComputeRequest) -> pb.ComputeResponse:
        """A ComputeRequest answered in this process (what the cluster's worker would do)."""
        return self._engine(self._compute, req, self._store)

    def _engine(self, fn, *args):
        try:
            return fn(*args)
        except self._missing as e:
            raise MissingTensorsError(str(e)) from None
        except Exception as e:  # noqa: BLE001  (the family's, as a cluster would say it)
            mine = from_engine_error(e)
            if mine is None:
                raise
        raise mine  # outside the handler: the engine's frames are not the user's


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
            return self._exchange(*build_request(nodes, keep, self.held,
                                                 self.stream_threshold), nodes, keep)
        except MissingTensorsError:  # the cluster lost leaves it held: send their bytes again
            self.held.clear()
            return self._exchange(*build_request(nodes, keep, self.held,
                                                 self.stream_threshold), nodes, keep)

    def evaluate_later(self, nodes: list, done) -> None:
        """The request is built here (it reads the graph); a thread sends it and reads the
        answer, so the caller records its next step meanwhile."""
        self.settle()
        request = build_request(nodes, len(nodes), self.held, self.stream_threshold)
        self._later = (self._sender().submit(self._exchange, *request, nodes, len(nodes)),
                       done)

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


_current: Session | None = None


def connect(address: str | None = None, *, token: str | None = None, tls=None,
            timeout: float = 120.0) -> Session:
    """Use the cluster at `address` (default `$REMOTEGRAD_ADDR`, else localhost:50051), or
    `"local"` for the engine in this process. Raises if a cluster cannot be reached."""
    global _current
    address = address or os.environ.get("REMOTEGRAD_ADDR") or DEFAULT_ADDRESS
    token = token or os.environ.get("REMOTEGRAD_TOKEN") or None
    tls = tls or os.environ.get("REMOTEGRAD_TLS_CA") or None
    if address == "local":
        session: Session = LocalSession()
    else:
        session = RemoteSession(address, token=token, tls=tls, timeout=timeout)
        if not session.ping(timeout=5.0):
            session.close()
            raise ClusterUnavailableError(f"cannot reach remotegrad cluster at {address}")
    if _current is not None:
        _current.close()
        # Updates pending on the old cluster may name tensors only it holds.
        from ._node import forget_updates
        forget_updates()
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
