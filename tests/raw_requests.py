"""Raw ComputeRequests for the tests that drive a gateway or worker without the SDK: one that
keeps a worker busy for seconds, and one answered at once."""

from __future__ import annotations

import numpy as np

from remotegrad.proto import codec
from remotegrad.proto.codec import WireNode


def slow_request(n: int = 2000, depth: int = 30):
    """sum(x @ x @ ... @ x): seconds of matmuls on a worker however fast the machine, a
    small answer (cancel it once the test knows what it needed)."""
    x = (np.eye(n) * 0.5).astype(np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": x.shape})]
    for i in range(1, depth + 1):
        nodes.append(WireNode(i, "matmul", (i - 1, 0), {}))
    nodes.append(WireNode(depth + 1, "sum", (depth,), {"dim": None, "keepdim": False}))
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [depth + 1])


def quick_request(i: int):
    """sum of four i's (4 * i), a new graph for each i (no cache hit)."""
    x = np.full(4, float(i), np.float32)
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": (4,)}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [1])
