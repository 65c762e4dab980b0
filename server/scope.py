"""What ClusterStatus shows to whom (issue 15, item 12).

An operator (no tokens configured, or a token marked `:operator`, server/security.py) sees
the cluster: every worker's address, backend and calls in flight, and this gateway's
result-cache counters. A tenant sees what is its own: how many workers are live and their
backends (what its calls can run on), never an address (workers take calls from the
gateway only, but an address is still a target) or another tenant's load, and the cache
hits and misses of its own calls on this gateway.
"""

from __future__ import annotations

import threading
from collections import Counter

from remotegrad.proto import metrics
from remotegrad.proto import remotegrad_pb2 as pb

CLUSTER, TENANT = "cluster", "tenant"


class CacheCounts:
    """Result-cache hits and misses per tenant, on this gateway. Tenants are the ones the
    tokens name (or the default one), so the table is as small as the tokens file."""

    def __init__(self) -> None:
        self._hits: Counter[str] = Counter()
        self._misses: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, tenant: str, hit: bool) -> None:
        with self._lock:
            (self._hits if hit else self._misses)[tenant] += 1

    def of(self, tenant: str) -> tuple[int, int]:
        with self._lock:
            return self._hits[tenant], self._misses[tenant]


def cluster_status(pool, counts: CacheCounts, tenant: str, operator: bool
                   ) -> pb.ClusterStatusResponse:
    workers = pool.snapshot()
    if operator:
        return pb.ClusterStatusResponse(
            workers=[pb.WorkerInfo(address=w.address, in_flight=w.inflight,
                                   backend=str(w.info.get("backend", ""))) for w in workers],
            cache_hits=int(metrics.hits()), cache_misses=int(metrics.misses()),
            scope=CLUSTER)
    hits, misses = counts.of(tenant)
    # Sorted: the order of the pool (its routing) says nothing either.
    backends = sorted(str(w.info.get("backend", "")) for w in workers)
    return pb.ClusterStatusResponse(workers=[pb.WorkerInfo(backend=b) for b in backends],
                                    cache_hits=hits, cache_misses=misses, scope=TENANT)
