"""Results past the gateway's inline bound, stored by the worker that computed them.

The gateway sends its --inline-result-bytes with each call (ComputeRequest
.inline_result_bytes). A worker with the shared store (Redis) applies the gateway's rule
itself: results are inlined while their bytes total at most the bound, in target order;
each one past it is written to the tenant's tensor store under its content hash and
answered by that hash, dtype and shape, without data. The gateway, which would have
received the whole answer as one message, stored it and answered it by hash, receives a
small message instead (server/gateway.py _by_reference skips what arrives stored).

A hedged or retried call writes the same content-named keys with the same bytes: harmless.
A worker without the shared store (its store is its own, which the gateway cannot read),
or whose write fails, answers inline as before; the gateway then stores what it must.
"""

from __future__ import annotations

import numpy as np
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb


class Results:
    """One answer's results: inline up to the bound, by reference past it."""

    def __init__(self, req: pb.ComputeRequest, store, tenant: str) -> None:
        shares = getattr(store, "shared", False) and hasattr(store, "share")
        sent = req.HasField("inline_result_bytes")
        self.limit = req.inline_result_bytes if shares and sent else None
        self.store, self.tenant = store, tenant
        self.inline = 0
        self.stored: dict[int, pb.TensorData] = {}  # target -> its reference (once each)

    def result(self, target: int, value: np.ndarray) -> pb.TensorData:
        nbytes = np.asarray(value).nbytes
        if self.limit is None or self.inline + nbytes <= self.limit:
            self.inline += nbytes
            return codec.encode_array(value, with_hash=False)
        ref = self.stored.get(target)
        if ref is None:
            msg = codec.encode_array(value)  # hashed: its name in the store
            if not self.store.share(self.tenant, msg):
                return msg  # the store failed: inline (the gateway tries it again)
            ref = self.stored[target] = pb.TensorData(dtype=msg.dtype, shape=msg.shape,
                                                      hash=msg.hash)
        out = pb.TensorData()
        out.CopyFrom(ref)
        return out
