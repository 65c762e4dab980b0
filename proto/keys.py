"""Redis key names, built in one place: versioned, namespaced per tenant, content-addressed."""

PREFIX = "rg:v1"


def tensor_key(tenant: str, digest: str) -> str:
    return f"{PREFIX}:{tenant}:tensor:{digest}"


def result_key(tenant: str, fingerprint: str) -> str:
    return f"{PREFIX}:{tenant}:result:{fingerprint}"


def worker_key(address: str) -> str:
    return f"{PREFIX}:workers:{address}"


WORKER_PATTERN = f"{PREFIX}:workers:*"
