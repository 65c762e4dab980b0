"""A call's fingerprint and the provenance names of its kept results: the one derivation,
here in proto/ so that the SDK can compute the names itself (to pipeline a step on names
it knows before the cluster answers), and the gateway does the same.

The fingerprint is canonical: the same graph over the same leaf names gives the same key,
however its nodes were numbered or ordered, whichever client sent it. A kept result's name
is keys.kept_name(fingerprint, the first position of its node in the targets): known from
the request alone, before the value exists, never a hash of the value's bytes.
"""

from __future__ import annotations

import hashlib

from .catalog import attrs_key
from .keys import kept_name
from .nodes import WireNode, distinct_wrts


def _canonical_attrs(attrs: dict) -> bytes:
    return repr(attrs_key(attrs)).encode()


def fingerprint(nodes: list[WireNode], targets: list[int]) -> str:
    """Hash each node from its op, attributes (a leaf's: its name, dtype and shape; -0.0
    and 0.0 apart, NaNs alike: attrs_key) and its inputs' hashes (a Merkle DAG); the key
    hashes the targets' hashes in order. Nodes come inputs first (the gateway has
    validated that)."""
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


def kept_names(call: str, targets: list[int], keep) -> dict[int, str]:
    """{kept target node id: its name}, `call` being fingerprint(nodes, targets)."""
    first: dict[int, int] = {}
    for i, t in enumerate(targets):
        first.setdefault(t, i)
    return {k: kept_name(call, first[k]) for k in keep}
