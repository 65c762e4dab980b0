"""Issue 17 item 4: the worker registry without keyspace scans.

Before, every gateway refreshed its worker list with `SCAN MATCH rg:v1:workers:*` over the
whole keyspace, once a second, inside acquire(): 36 ms with 100k other keys, 610 ms with
1M. Now workers heartbeat into one hash and one sorted set (proto/registry.py) and a
background thread in the gateway reads them. Against a redis-server of its own holding
100k unrelated keys, this shows: Redis counts no SCAN or KEYS while a gateway and a worker
run through many refreshes and calls; a registry read stays fast however many keys there
are; an expired heartbeat is dropped by its score.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from procs import start_cluster, start_redis, stop, wait_until
from remotegrad.proto import codec, keys, registry
from remotegrad.proto.codec import WireNode

pytestmark = pytest.mark.integration

OTHER_KEYS = 100_000


def _fill(client, n: int) -> None:
    """`n` keys that are none of the registry's, as a busy cache holds."""
    for start in range(0, n, 5000):
        client.mset({f"rg:v2:result:someone:{i:08x}": b"x" for i in range(start, start + 5000)})
    assert client.dbsize() >= n


def _commands(client) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in client.info("commandstats").items()}


def _sum_request(x: np.ndarray):
    h = codec.array_hash(x)
    nodes = [WireNode(0, "leaf", (), {"hash": h, "dtype": "float32", "shape": x.shape}),
             WireNode(1, "sum", (0,), {"dim": None, "keepdim": False})]
    return codec.encode_request(nodes, [codec.encode_array(x, h)], [1])


@pytest.fixture(scope="module")
def crowded():
    redis = start_redis()
    try:
        _fill(redis.client(), OTHER_KEYS)
        yield redis
    finally:
        stop(redis.proc)


@pytest.mark.slow
def test_no_scan_while_a_gateway_refreshes_and_routes(crowded):
    client = crowded.client()
    cluster = start_cluster(crowded, 1)  # --heartbeat 0.5: a refresh every 0.5 s
    try:
        client.config_resetstat()
        stub, began = cluster.stub(), time.monotonic()
        for i in range(40):
            x = np.full(8, float(i), np.float32)
            (got,) = codec.decode_response(stub.Compute(_sum_request(x), timeout=30))
            assert float(got) == 8.0 * i
            time.sleep(0.05)
        time.sleep(max(0.0, 4.0 - (time.monotonic() - began)))  # >= 8 refreshes
        calls = _commands(client)
        print(f"\ncommands Redis ran over {time.monotonic() - began:.1f}s: {calls}")
        assert "scan" not in calls and "keys" not in calls
        # The registry was read and written meanwhile, by the scripts: reads (one per
        # refresh) and heartbeats (one per 0.5 s).
        assert calls.get("evalsha", 0) + calls.get("eval", 0) >= 12
        assert len(cluster.status().workers) == 1
    finally:
        cluster.close()


def test_a_registry_read_stays_fast_among_many_keys(crowded):
    client = crowded.client()
    reg = registry.Registry(client)
    for i in range(50):
        reg.announce(f"10.1.0.{i}:5000", {"backend": "numpy", "inflight": i}, ttl_s=30)
    try:
        reg.live()  # the script loaded
        began = time.perf_counter()
        for _ in range(20):
            live = dict(reg.live())
        took = (time.perf_counter() - began) / 20
        began = time.perf_counter()
        scanned = sum(1 for _ in client.scan_iter(match=f"{keys.WORKERS_SPACE}*", count=1000))
        scan_took = time.perf_counter() - began
        print(f"\nregistry read of 50 workers among {client.dbsize()} keys: "
              f"{took * 1e3:.2f} ms; the old SCAN over the same keyspace: "
              f"{scan_took * 1e3:.1f} ms ({scanned} keys matched)")
        assert len(live) >= 50
        assert took < 0.02  # O(workers): a SCAN of 100k keys takes ~36 ms here
        assert took < scan_took
    finally:
        for i in range(50):
            reg.leave(f"10.1.0.{i}:5000")


def test_an_expired_heartbeat_is_dropped_by_its_score(crowded):
    client = crowded.client()
    reg = registry.Registry(client)
    reg.announce("10.2.0.1:1", {"backend": "numpy"}, ttl_s=0.3)
    reg.announce("10.2.0.2:2", {"backend": "numpy"}, ttl_s=30)
    try:
        assert {b"10.2.0.1:1", b"10.2.0.2:2"} <= {a for a, _ in reg.live()}
        wait_until(lambda: b"10.2.0.1:1" not in {a for a, _ in reg.live()}, "expiry",
                   timeout=5)
        # Gone from both structures, not only hidden: the hash does not grow.
        assert client.hget(keys.WORKER_RECORDS, "10.2.0.1:1") is None
        assert client.zscore(keys.WORKER_EXPIRY, "10.2.0.1:1") is None
        assert registry.workers(client)["10.2.0.2:2"]["backend"] == "numpy"
        # A record filed without a heartbeat (by hand, or half of a foreign write) is
        # never live and goes at the next read.
        client.hset(keys.WORKER_RECORDS, "10.2.0.3:3", b"{}")
        assert b"10.2.0.3:3" not in {a for a, _ in reg.live()}
        assert client.hget(keys.WORKER_RECORDS, "10.2.0.3:3") is None
    finally:
        reg.leave("10.2.0.2:2")
        reg.leave("10.2.0.1:1")
    assert client.zscore(keys.WORKER_EXPIRY, "10.2.0.2:2") is None
