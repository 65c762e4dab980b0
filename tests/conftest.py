"""Fixtures that start real processes on loopback ports (see procs.py)."""

from __future__ import annotations

import os

import pytest

# The suite's gateways send every graph to a worker: the tests are about that path (its
# result cache, routing, faults). Small graphs run in the gateway by default
# (--local-max-nodes 64); the tests of that path pass the flag themselves, and every
# process a test starts inherits this.
os.environ.setdefault("REMOTEGRAD_LOCAL_MAX_NODES", "0")

# procs (grpc, the generated code) is imported inside the fixtures: the engine tests must
# run where only numpy, the array module and PyTorch are installed (scripts/gpu_check.sh).


@pytest.fixture(scope="session")
def redis_server():
    from procs import start_redis, stop
    r = start_redis()
    yield r
    stop(r.proc)


@pytest.fixture(scope="session")
def cluster(redis_server):
    """A gateway and two workers, shared by the tests that only make calls."""
    from procs import start_cluster
    c = start_cluster(redis_server, 2, "--inline-result-bytes", str(1 << 20))
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _no_gevent_patching():
    """Locust monkey-patches a process with gevent on import; in the test process that
    deadlocks later tests' threads and channels. Load tests run Locust in subprocesses."""
    yield
    import sys
    monkey = sys.modules.get("gevent.monkey")
    assert monkey is None or not monkey.is_module_patched("socket"), \
        "a test imported Locust (or patched gevent) in the pytest process"
