"""Redis key names, built in one place: versioned, content-addressed, one key space per kind.

The kind comes first and the tenant after it (`rg:v1:tensor:{tenant}:{digest}`,
`rg:v1:result:{tenant}:{fingerprint}`, `rg:v1:workers:{address}`), so that no tenant name
can reach into another kind's space: a tenant called `workers` owns
`rg:v1:tensor:workers:...`, never a key of the worker registry. Tenant names and digests
are checked here, at the one place keys are made: neither can carry a `:` (or a glob
character), so a client-chosen name never addresses a chunk key or another tenant's key.
"""

from __future__ import annotations

import re

PREFIX = "rg:v1"

# A tensor's content address: blake2b with a 16-byte digest, in lowercase hex
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
    return f"{PREFIX}:tensor:{check_tenant(tenant)}:{check_digest(digest)}"


def chunk_key(tenant: str, digest: str, index: int) -> str:
    """The i-th chunk of a large tensor (its header lives at tensor_key)."""
    return f"{tensor_key(tenant, digest)}:{int(index)}"


def result_key(tenant: str, fingerprint: str) -> str:
    # The fingerprint is the gateway's own (hex and target positions), never a client's.
    return f"{PREFIX}:result:{check_tenant(tenant)}:{fingerprint}"


def rate_key(tenant: str) -> str:
    """A tenant's rate-limit bucket, shared by the gateways on one Redis."""
    return f"{PREFIX}:rate:{check_tenant(tenant)}"


def worker_key(address: str) -> str:
    return f"{PREFIX}:workers:{address}"


WORKER_PATTERN = f"{PREFIX}:workers:*"


def tensor_pattern(tenant: str = "*") -> str:
    """A SCAN/KEYS pattern of a tenant's tensor keys (every tenant's by default)."""
    return f"{PREFIX}:tensor:{tenant}:*"


def result_pattern(tenant: str = "*") -> str:
    return f"{PREFIX}:result:{tenant}:*"
