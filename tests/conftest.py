"""Fixtures that start real processes on loopback ports (see procs.py)."""

from __future__ import annotations

import pytest

from procs import start_cluster, start_redis, stop


@pytest.fixture(scope="session")
def redis_server():
    r = start_redis()
    yield r
    stop(r.proc)


@pytest.fixture(scope="session")
def cluster(redis_server):
    """A gateway and two workers, shared by the tests that only make calls."""
    c = start_cluster(redis_server, 2, "--inline-result-bytes", str(1 << 20))
    yield c
    c.close()
