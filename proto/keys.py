"""Redis key names, built in one place: versioned, content-addressed, one key space per kind.

The kind comes first and the tenant after it (`rg:v2:tensor:{tenant}:{{digest}}`,
`rg:v2:result:{tenant}:{fingerprint}`, the registry's `rg:v2:workers:{registry}`), so that
no tenant name can reach into another kind's space: a tenant called `workers` owns
`rg:v2:tensor:workers:...`, never a key of the worker registry. Tenant names and digests
are checked here, at the one place keys are made: neither can carry a `:`, a brace (a
Redis Cluster hash tag) or a glob character, so a client-chosen name never addresses a
chunk key, another tenant's key or another slot.

Redis Cluster: the part of a key in braces (its hash tag) chooses its slot. A tensor's
digest is its tag: tensors spread over the nodes, a large tensor is one hash of its chunks
(one key: its chunks never span slots, and live and expire together), and any key named
beside a tensor with its digest in braces lands on the same node. The registry's two keys
share the tag `{registry}` (one script updates both). v2: the layout changed (tags,
chunked hashes, the registry), and keys of one version never mix with the other's.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "rg:v2"

# A tensor's content address: SHA-256 cut to 16 bytes, in lowercase hex
# (proto/nodes.py tensor_hash). Results stored by reference are named the same way.
DIGEST = re.compile(r"[0-9a-f]{32}")
TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class KeyNameError(Exception):
    """A digest or tenant name that is not one (the caller's input: INVALID_ARGUMENT).
    Not a ValueError: the engine reads those as errors of the values it computes."""


def is_digest(value) -> bool:
    return isinstance(value, str) and DIGEST.fullmatch(value) is not None


def check_digest(value) -> str:
    if not is_digest(value):
        shown = value if isinstance(value, str) and len(value) <= 80 else \
            f"{str(value)[:80]}..."
        raise KeyNameError(f"{shown!r} is not a tensor digest (32 lowercase hex characters)")
    return value


def check_tenant(value) -> str:
    if not isinstance(value, str) or TENANT.fullmatch(value) is None:
        raise KeyNameError(f"tenant name {str(value)[:80]!r}: use 1-64 letters, digits, _ . -")
    return value


def tensor_key(tenant: str, digest: str) -> str:
    """A tensor: the whole TensorData, or a hash of its chunks (proto/store.py); hash-tagged
    by its digest."""
    return f"{PREFIX}:tensor:{check_tenant(tenant)}:{{{check_digest(digest)}}}"


def result_key(tenant: str, fingerprint: str) -> str:
    # The fingerprint is the gateway's own (hex and target positions), never a client's.
    return f"{PREFIX}:result:{check_tenant(tenant)}:{fingerprint}"


def rate_key(tenant: str) -> str:
    """A tenant's rate-limit bucket, shared by the gateways on one Redis."""
    return f"{PREFIX}:rate:{check_tenant(tenant)}"


# The worker registry: one hash (address -> the worker's JSON record) and one sorted set
# (address -> when its heartbeat expires, in Redis's clock, ms). proto/registry.py.
WORKERS_SPACE = f"{PREFIX}:workers:"
WORKER_RECORDS = f"{WORKERS_SPACE}{{registry}}"
WORKER_EXPIRY = f"{WORKER_RECORDS}:expiry"


def tensor_pattern(tenant: str = "*") -> str:
    """A SCAN/KEYS pattern of a tenant's tensor keys (every tenant's by default)."""
    return f"{PREFIX}:tensor:{tenant}:*"


def result_pattern(tenant: str = "*") -> str:
    return f"{PREFIX}:result:{tenant}:*"


# Kept tensors' durable copies (proto/kept.py): the value keys are tagged by digest, like a
# tensor's, and have no TTL, so that a Redis running volatile-lru never evicts them; the
# tenant's ledger (a hash: `bytes` used, `seen` when it last called, `h:<digest>` -> bytes
# of each copy) is tagged by the tenant, so one script reserves and releases atomically.
KEPT_TENANTS = f"{PREFIX}:kept-tenants"


def kept_key(tenant: str, digest: str) -> str:
    return f"{PREFIX}:kept:{check_tenant(tenant)}:{{{check_digest(digest)}}}"


def kept_chunk_key(tenant: str, digest: str, index: int) -> str:
    return f"{kept_key(tenant, digest)}:{int(index)}"


def kept_ledger_key(tenant: str) -> str:
    return f"{PREFIX}:kept-ledger:{{{check_tenant(tenant)}}}"


# A kept result's name (ComputeRequest.keep_as): provenance, not content. The producing
# call's fingerprint (proto/provenance.py: a Merkle hash of the graph's structure,
# attributes and leaf names, the targets in order) and the kept output's position (the
# first index of its node in `targets`) name it, so the gateway, or an SDK that computes
# the same fingerprint, knows the name before the value exists, and nothing hashes the
# value's bytes. Computation is pure: the same call gives the same value under the same
# name, on whichever worker runs it (recomputation from lineage relies on it). The
# "kept|" prefix keeps these names apart from content hashes (proto/nodes.py tensor_hash
# hashes dtype, shape and bytes, never this text).
def kept_name(fingerprint: str, position: int) -> str:
    text = f"kept|v1|{fingerprint}|{int(position)}".encode()
    return hashlib.sha256(text).hexdigest()[:32]
