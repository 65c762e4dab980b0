"""Fixtures that start real processes on loopback ports (see procs.py)."""

from __future__ import annotations

import datetime
import os
import zlib

import pytest

# The suite's gateways send every graph to a worker: the tests are about that path (its
# result cache, routing, faults). Small graphs run in the gateway by default
# (--local-max-nodes 64); the tests of that path pass the flag themselves, and every
# process a test starts inherits this.
os.environ.setdefault("REMOTEGRAD_LOCAL_MAX_NODES", "0")

# Slow scale runs (`@pytest.mark.slow`: processes started, killed, failed over and waited
# for, seconds to tens of seconds each) run as a bounded sample so that the suite stays
# inside CI's budget: they are dealt into SLOW_GROUPS groups in the order of a hash of their
# test ids, and a run takes one group, the next one each day (UTC), so that every slow test
# runs within SLOW_GROUPS days. REMOTEGRAD_FULL_TESTS=1 runs them all; REMOTEGRAD_SLOW_GROUP=g takes
# group g (the run's header and summary print it, to run the same sample again). A test
# file or test named on the command line (file.py, file.py::test) always runs in full; a
# folder or the whole suite is sampled. What is left out is reported as deselected and
# listed in the summary, never dropped silently.
SLOW_GROUPS = 3
FULL = "REMOTEGRAD_FULL_TESTS"
GROUP = "REMOTEGRAD_SLOW_GROUP"


def _slow_group() -> int | None:
    """The group of slow tests this run takes; None: all of them."""
    if os.environ.get(FULL, "") not in ("", "0"):
        return None
    value = os.environ.get(GROUP)
    if value is None:
        return datetime.datetime.now(datetime.timezone.utc).toordinal() % SLOW_GROUPS
    if not value.isdigit() or int(value) >= SLOW_GROUPS:
        raise pytest.UsageError(f"{GROUP}={value!r}: expected 0 to {SLOW_GROUPS - 1}")
    return int(value)


def _groups(nodeids: list[str]) -> dict[str, int]:
    """Each slow test's group: in the order of a hash of their ids, dealt out in turn, so
    that the groups hold as many tests each (a hash alone made one twice another)."""
    ranked = sorted(nodeids, key=lambda nodeid: (zlib.crc32(nodeid.encode()), nodeid))
    return {nodeid: rank % SLOW_GROUPS for rank, nodeid in enumerate(ranked)}


def pytest_configure(config):
    group = _slow_group()
    # Fixed here, before any xdist worker starts (they inherit the environment): every
    # worker then collects the same tests, even across midnight.
    if group is not None:
        os.environ.setdefault(GROUP, str(group))
    config.stash[_SAMPLE] = {"group": group, "ran": 0, "left": []}


_SAMPLE = pytest.StashKey[dict]()


def pytest_report_header(config):
    group = config.stash[_SAMPLE]["group"]
    if group is None:
        return f"slow tests: all ({FULL} set)"
    return (f"slow tests: group {group} of 0..{SLOW_GROUPS - 1} ({GROUP}={group} runs this "
            f"sample again, {FULL}=1 runs all)")


def _named(config) -> set[str]:
    """Test files and ids the command line names (file.py, file.py::test): never sampled,
    only the tests a folder (or the default testpaths) brings in are."""
    named = set()
    for arg in config.args:
        path, sep, rest = arg.partition("::")
        if path.endswith(".py"):
            rel = os.path.relpath(os.path.abspath(path), str(config.rootpath))
            named.add(f"{rel}{sep}{rest}")
    return named


def _under(nodeid: str, named: str) -> bool:
    if named.endswith(".py"):
        return nodeid.startswith(named + "::")
    return nodeid == named or nodeid.startswith((named + "[", named + "::"))


@pytest.hookimpl(trylast=True)  # after -m and -k: only the tests they select are sampled
def pytest_collection_modifyitems(config, items):
    sample = config.stash[_SAMPLE]
    if sample["group"] is None:
        return
    named = _named(config)
    sampled = [item.nodeid for item in items if item.get_closest_marker("slow") is not None
               and not any(_under(item.nodeid, n) for n in named)]
    groups = _groups(sampled)
    keep, left = [], []
    for item in items:  # not in `groups`: not sampled, runs
        runs = groups.get(item.nodeid, sample["group"]) == sample["group"]
        (keep if runs else left).append(item)
    sample["ran"] = sum(1 for item in keep if item.get_closest_marker("slow"))
    sample["left"] = [item.nodeid for item in left]
    if hasattr(config, "workeroutput"):  # an xdist worker: the controller reports it
        config.workeroutput["remotegrad_slow"] = dict(sample)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = keep


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """Under xdist the workers collect: the controller takes the sample one of them made
    (every worker makes the same)."""
    sample = getattr(node, "workeroutput", {}).get("remotegrad_slow")
    if sample is not None:
        node.config.stash[_SAMPLE].update(sample)


def pytest_terminal_summary(terminalreporter, config):
    sample = config.stash[_SAMPLE]
    if not sample["left"]:
        return
    terminalreporter.section("slow tests left out of this run")
    terminalreporter.write_line(
        f"slow tests: {sample['ran']} ran (group {sample['group']}), {len(sample['left'])} "
        f"were deselected; {FULL}=1 runs them all:")
    for nodeid in sample["left"]:
        terminalreporter.write_line(f"  {nodeid}")


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
