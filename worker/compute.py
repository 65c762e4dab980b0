"""One ComputeRequest → one ComputeResponse: the path shared by the Worker service and the
embedded engine (`connect("local")`)."""

from __future__ import annotations

import numpy as np
from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.catalog import OpError
from remotegrad.proto.store import MemoryTensorStore

from . import engine
from .backend import numpy_backend

__all__ = ["MemoryTensorStore", "MissingTensorError", "compute"]


class MissingTensorError(OpError):
    def __init__(self, digests: list[str]) -> None:
        super().__init__(f"tensor(s) not held by the cluster: {', '.join(digests)}")
        self.digests = digests


def compute(req: pb.ComputeRequest, store, tenant: str = "default",
            backend=numpy_backend) -> pb.ComputeResponse:
    decoded = codec.decode_request(req)
    inline = decoded.tensor_protos
    for msg in inline.values():  # remembered for later requests that name it by hash
        store.put(tenant, msg)

    def leaf(digest: str):
        msg = inline.get(digest) or store.get(tenant, digest)
        if msg is None:
            raise MissingTensorError([digest])
        return backend.to_device(codec.decode_array(msg))

    values = engine.execute(decoded.nodes, decoded.targets, leaf, backend.xp)
    return codec.encode_response([np.asarray(backend.to_host(v)) for v in values])
