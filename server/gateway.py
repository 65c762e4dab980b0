"""The gateway: validate → fingerprint → result cache → least-loaded worker → cache.

`Gateway` holds the logic as plain methods; `GatewayServicer` only decodes, calls it and
maps errors to status codes (server/errors.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import grpc

from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto import remotegrad_pb2_grpc as pb_grpc
from remotegrad.proto.catalog import OpError
from remotegrad.worker import engine
from remotegrad.worker.compute import MissingTensorError

from . import metrics
from .errors import TooLargeError, abort
from .fingerprint import fingerprint
from .pool import WorkerPool

log = logging.getLogger("remotegrad.gateway")


@dataclass(frozen=True)
class Limits:
    max_nodes: int = 1_000_000
    max_tensor_bytes: int = 4 << 30


class Gateway:
    def __init__(self, store, cache, pool: WorkerPool, limits: Limits = Limits()) -> None:
        self.store, self.cache, self.pool, self.limits = store, cache, pool, limits

    def validate(self, req: pb.ComputeRequest) -> codec.Request:
        if len(req.graph.nodes) > self.limits.max_nodes:
            raise OpError(f"graph has {len(req.graph.nodes)} nodes; the limit is "
                          f"{self.limits.max_nodes}")
        decoded = codec.decode_request(req)
        g, _ = engine.build(decoded.nodes, decoded.targets)
        biggest = max(g.metas, key=lambda m: m.nbytes)
        if biggest.nbytes > self.limits.max_tensor_bytes:
            raise TooLargeError(
                f"a tensor of shape {list(biggest.shape)} ({biggest.dtype}, {biggest.nbytes} "
                f"bytes) exceeds the limit of {self.limits.max_tensor_bytes} bytes")
        for msg in decoded.tensor_protos.values():
            codec.decode_array(msg, verify_hash=True)
        return decoded

    def _stage_tensors(self, decoded: codec.Request, tenant: str) -> list[str]:
        """Keep the inline leaves; return the hash-only leaves the cluster lacks."""
        inline = decoded.tensor_protos
        for msg in inline.values():
            metrics.BYTES_IN.inc(len(msg.data))
            self.store.put(tenant, msg)
        refs = sorted({n.attrs["hash"] for n in decoded.nodes if n.op == "leaf"} - set(inline))
        return self.store.missing(tenant, refs)

    def compute(self, req: pb.ComputeRequest, tenant: str, timeout: float | None,
                on_cancel) -> pb.ComputeResponse:
        decoded = self.validate(req)
        missing = self._stage_tensors(decoded, tenant)
        if missing:
            raise MissingTensorError(missing)
        fp = fingerprint(decoded.nodes, decoded.targets)
        raw = self.cache.get(tenant, fp)
        if raw is not None:
            metrics.CACHE.labels("hit").inc()
            resp = pb.ComputeResponse.FromString(raw)
            resp.cache_hit, resp.worker = True, ""
            return resp
        metrics.CACHE.labels("miss").inc()
        forward = req
        if not self.store.shared:  # workers cannot read this process's store: attach leaves
            forward = pb.ComputeRequest()
            forward.CopyFrom(req)
            have = set(decoded.tensor_protos)
            for n in decoded.nodes:
                h = n.attrs.get("hash") if n.op == "leaf" else None
                if h and h not in have:
                    forward.tensors.append(self.store.get(tenant, h))
                    have.add(h)
        resp = self._execute(forward, tenant, timeout, on_cancel)
        self.cache.put(tenant, fp, resp.SerializeToString())
        return resp

    def _execute(self, req, tenant, timeout, on_cancel) -> pb.ComputeResponse:
        """Run on the least-loaded worker; once more on another if that one is gone."""
        tried: tuple = ()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            w = self.pool.acquire(exclude=tried)
            try:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                call = w.stub.Execute.future(req, timeout=left, metadata=(
                    ("x-request-id", req.request_id), ("x-tenant", tenant)))
                on_cancel(call.cancel)
                return call.result()
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or tried:
                    raise
                self.pool.mark_dead(w)
                metrics.RETRIES.inc()
                tried = (w,)
            finally:
                self.pool.release(w)


def _tenant(context: grpc.ServicerContext) -> str:
    return "default"


class GatewayServicer(pb_grpc.GatewayServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def Compute(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            resp = self.gw.compute(request, _tenant(context), context.time_remaining(),
                                   context.add_callback)
        except Exception as e:  # noqa: BLE001  (every failure becomes a status)
            log.info("Compute %s refused: %s", request.request_id, e)
            abort(context, e)
        metrics.BYTES_OUT.inc(sum(len(t.data) for t in resp.results))
        return resp

    def HasTensors(self, request, context):  # noqa: N802
        missing = set(self.gw.store.missing(_tenant(context), list(request.hashes)))
        return pb.HasTensorsResponse(present=[h not in missing for h in request.hashes])

    def ClusterStatus(self, request, context):  # noqa: N802
        workers = [pb.WorkerInfo(address=w.address, in_flight=w.inflight,
                                 backend=w.info.get("backend", ""))
                   for w in self.gw.pool.snapshot()]
        hits = metrics.CACHE.labels("hit")._value.get()
        misses = metrics.CACHE.labels("miss")._value.get()
        return pb.ClusterStatusResponse(workers=workers, cache_hits=int(hits),
                                        cache_misses=int(misses))
