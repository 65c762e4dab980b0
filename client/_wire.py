"""From lazy nodes to one ComputeRequest, and its answer back onto the nodes.

A node travels as a `leaf` when its value is known here, or held by the cluster (its
hash), unless it lies on an autograd path whose history a gradient needs (`tracked`).
Small leaves travel inline; large ones are streamed up once beforehand; leaves the cluster
holds travel as their hash. Tensors updated in place (parameters and optimiser state under
no_grad) are computed along with whatever is materialized and kept in the cluster, so the
next graph names them by hash instead of repeating their history.
"""

from __future__ import annotations

import uuid

from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.codec import WireNode

from ._node import Node, pending_updates
from ._session import MissingTensorsError, Session, current

def _travels_as_leaf(node: Node) -> bool:
    known = node.value is not None or node.hash is not None
    return known and (node.op == "leaf" or not node.tracked)


def build_request(targets: list[Node], keep: list[Node], session: Session):
    """The request for `targets` (the first `keep` of which stay in the cluster), and the
    large leaves to stream up before it."""
    ids: dict[int, int] = {}
    nodes: list[WireNode] = []
    inline: list[pb.TensorData] = []
    uploads: list[pb.TensorData] = []
    slots: dict[str, int] = {}  # equal bytes in distinct tensors: distinct leaves
    stack: list[tuple[Node, bool]] = [(t, False) for t in reversed(targets)]
    while stack:
        node, ready = stack.pop()
        if id(node) in ids:
            continue
        if _travels_as_leaf(node):
            if node.hash is None:
                node.hash = codec.array_hash(node.value)
            ids[id(node)] = len(nodes)
            attrs = {"hash": node.hash, "dtype": node.meta.dtype, "shape": node.meta.shape}
            slot = slots[node.hash] = slots.get(node.hash, -1) + 1
            if slot:
                attrs["tag"] = str(slot)
            nodes.append(WireNode(len(nodes), "leaf", (), attrs))
            if slot == 0 and node.hash not in session.held and node.value is not None:
                msg = codec.encode_array(node.value, node.hash)
                big = node.meta.nbytes > session.stream_threshold
                (uploads if big else inline).append(msg)
        elif ready:
            ids[id(node)] = len(nodes)
            nodes.append(WireNode(len(nodes), node.op, tuple(ids[id(i)] for i in node.inputs),
                                  node.attrs))
        else:
            stack.append((node, True))
            stack.extend((i, False) for i in reversed(node.inputs) if id(i) not in ids)
    req = codec.encode_request(nodes, inline, [ids[id(t)] for t in targets],
                               request_id=uuid.uuid4().hex)
    req.keep.extend(ids[id(k)] for k in keep)
    return req, uploads


def _targets(nodes: list[Node]) -> list[Node]:
    """The nodes asked for, with their batch siblings, each once, unknown ones only."""
    out: list[Node] = []
    seen: set[int] = set()
    for n in nodes:
        for m in [*(n.batch or ()), n]:
            if m.value is None and id(m) not in seen:
                seen.add(id(m))
                out.append(m)
    return out


def _send(session: Session, targets: list[Node], keep: list[Node]) -> pb.ComputeResponse:
    req, uploads = build_request(keep + targets, keep, session)
    if uploads:
        session.upload(uploads)
    return session.compute(req)


def materialize(nodes: list[Node]) -> None:
    """Compute the nodes' values (and their batch siblings') in one round trip."""
    targets = _targets(nodes)
    if not targets:
        return
    session = current()
    keep = [k for k in pending_updates() if all(k is not t for t in targets)]
    try:
        resp = _send_retrying(session, targets, keep)
    except Exception:  # noqa: BLE001
        if not keep:
            raise
        # A pending update that cannot be computed must not fail this value: it will
        # raise when it is itself read.
        keep = []
        resp = _send_retrying(session, targets, keep)
    _apply(session, resp, targets, keep)


def _send_retrying(session: Session, targets: list[Node], keep: list[Node]):
    try:
        return _send(session, targets, keep)
    except MissingTensorsError:  # the cluster lost leaves it held: send their bytes again
        session.held.clear()
        return _send(session, targets, keep)


def _apply(session: Session, resp: pb.ComputeResponse, targets: list[Node],
           keep: list[Node]) -> None:
    results = list(resp.results)
    for node, msg in zip(keep, results[:len(keep)]):
        node.hash = msg.hash or None
        node.inputs = ()  # it travels by hash from now on: its history can go
        if msg.data or not node.meta.nbytes:
            node.value = _readonly(codec.decode_array(msg))
        else:
            session.held.add(msg.hash)
    for node, msg in zip(targets, results[len(keep):]):
        if not msg.data and node.meta.nbytes:  # answered by reference: stream it down
            session.held.add(msg.hash)
            msg = session.fetch(msg.hash)
        node.value = _readonly(codec.decode_array(msg))
        node.hash = msg.hash or None  # results travel unhashed unless the cluster holds them
        node.batch = None


def _readonly(arr):
    arr.flags.writeable = False
    return arr
