"""Graph nodes and tensor content hashes as they travel: what the engine, the gateway's
checks and the SDK share.

Kept apart from `codec` so that the engine imports without the generated protobuf code
(a GPU machine may have another protobuf runtime, and no gRPC at all is needed to run a
graph).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

Attrs = dict[str, Any]


@dataclass(slots=True)
class WireNode:
    id: int
    op: str
    inputs: tuple[int, ...]
    attrs: Attrs


def distinct_wrts(nodes: list[WireNode]) -> dict[int, int]:
    """{node id: ordinal} of the non-leaf nodes some gradient is taken with respect to,
    and of the values overwrite nodes take (an in-place op's result).

    Two tensors a user holds are two tensors even when their expressions are the same
    (v1 = x * 2; v2 = x * 2): a gradient with respect to v2 must not count v1's uses, and
    an in-place op's rule reads the view it changed as its result (autodiff.vjp's
    overwrites) where t = v.tanh()'s rule, before v.tanh_(), reads t. The engine shares
    identical subexpressions and the fingerprint names a node by its expression, so both
    set such a node apart by its ordinal among these nodes (canonical: independent of how
    the client numbered them)."""
    wrts = {n.inputs[-1] for n in nodes if n.op == "grad" and n.inputs}
    wrts.update(n.inputs[1] for n in nodes if n.op == "overwrite" and len(n.inputs) == 2)
    out: dict[int, int] = {}
    for n in nodes:
        if n.id in wrts and n.op != "leaf":  # leaves are told apart by hash and tag
            out[n.id] = len(out)
    return out


def tensor_hash(dtype: str, shape: tuple[int, ...], data) -> str:
    """Content address of a tensor: dtype, shape and bytes. SHA-256 cut to 16 bytes: as
    collision-resistant at that length as blake2b's, and computed by the CPU's SHA
    instructions where it has them (x86 SHA-NI, ARMv8): 0.54 ms a MiB against blake2b's
    0.99 here, and every step hashes its batch three times and its kept results once."""
    h = hashlib.sha256()
    h.update(f"{dtype}|{','.join(map(str, shape))}|".encode())
    h.update(data)
    return h.hexdigest()[:32]


def contiguous(arr) -> np.ndarray:
    """A C-ordered ndarray, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    arr = np.asarray(arr)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def array_hash(arr: np.ndarray) -> str:
    arr = contiguous(arr)
    # memoryview cannot view a size-0 array as bytes; it has none to hash.
    data = memoryview(arr).cast("B") if arr.size else b""
    return tensor_hash(arr.dtype.name, arr.shape, data)
