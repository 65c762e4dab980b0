"""Canonical fingerprint of a computation: the same graph over the same leaf bytes gives
the same key, however its nodes were numbered or ordered, whichever client sent it."""

from __future__ import annotations

import hashlib

from remotegrad.proto.catalog import attrs_key
from remotegrad.proto.nodes import WireNode, distinct_wrts


def _canonical_attrs(attrs: dict) -> bytes:
    return repr(attrs_key(attrs)).encode()


def fingerprint(nodes: list[WireNode], targets: list[int]) -> str:
    """Hash each node from its op, attributes and its inputs' hashes (a Merkle DAG);
    the result key hashes the targets' hashes in order. Nodes come inputs first (the
    gateway has validated that)."""
    digest: dict[int, bytes] = {}
    salts = distinct_wrts(nodes)  # a tensor differentiated against is not its twin
    for n in nodes:
        h = hashlib.blake2b(digest_size=20)
        h.update(n.op.encode())
        h.update(_canonical_attrs(n.attrs))
        if n.id in salts:
            h.update(b"|distinct %d" % salts[n.id])
        for i in n.inputs:
            h.update(digest[i])
        digest[n.id] = h.digest()
    out = hashlib.blake2b(digest_size=20)
    for t in targets:
        out.update(digest[t])
    return out.hexdigest()
