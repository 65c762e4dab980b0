"""The worker's memory budget reads its container's cgroup limit (issue 17): a fraction of
the host's memory would let a worker in a small pod budget for the whole node. The cgroup
files here are real files in tmp_path, in the kernel's formats, given by parameter."""

from __future__ import annotations

import os

from remotegrad.worker import backend as backends

PHYSICAL = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
V1_UNLIMITED = "9223372036854771712"  # what cgroup v1 writes when no limit is set


def _file(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    return str(path)


def test_a_cgroup_v2_limit_below_the_hosts_memory_is_the_budget(tmp_path):
    small = _file(tmp_path, "memory.max", str(256 << 20))
    assert backends.cgroup_memory_limit([small]) == 256 << 20
    assert backends.host_memory_bytes([small]) == 256 << 20
    # the fraction a worker is given is of that, not of the host's memory
    assert backends.resolve_memory_limit(0.5, backends.host_memory_bytes([small]),
                                         "memory") == 128 << 20


def test_a_cgroup_v1_limit_is_read_when_v2_is_absent(tmp_path):
    v1 = _file(tmp_path, "memory.limit_in_bytes", str(1 << 30))
    assert backends.host_memory_bytes([str(tmp_path / "absent"), v1]) == min(1 << 30,
                                                                            PHYSICAL)


def test_no_limit_or_a_higher_one_leaves_the_hosts_memory(tmp_path):
    assert backends.host_memory_bytes([_file(tmp_path, "a", "max")]) == PHYSICAL
    assert backends.host_memory_bytes([_file(tmp_path, "b", V1_UNLIMITED)]) == PHYSICAL
    assert backends.host_memory_bytes([_file(tmp_path, "c", str(PHYSICAL * 4))]) == PHYSICAL
    assert backends.host_memory_bytes([str(tmp_path / "absent")]) == PHYSICAL
    # "max" in v2 decides: a v1 file beside it (a hybrid mount) is not read
    assert backends.host_memory_bytes([_file(tmp_path, "d", "max"),
                                       _file(tmp_path, "e", str(1 << 20))]) == PHYSICAL
