"""Redis topologies on loopback for the tests of Redis at scale: a Redis Cluster of
masters, and a master with a replica watched by a Sentinel. Real redis-server processes,
each started here and stopped here by pid; every wait bounded.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from procs import free_port, stop, wait_until


def _exe(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not on PATH (.ci/run installs redis-server)")
    return exe


def _server(folder: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([_exe("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(folder), "--save", "", "--appendonly", "no",
                             "--dbfilename", f"dump-{port}.rdb", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _client(port: int):
    import redis
    return redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=2)


@dataclass
class RedisCluster:
    ports: list[int]
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2])

    def node(self, port: int):
        return _client(port)

    def stop(self) -> None:
        for p in self.procs:
            stop(p)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a free port too: an ephemeral
    port above 55535 has none, and redis-server exits at once."""
    for _ in range(200):
        port = free_port()
        if port + 10000 <= 65535 and _free(port + 10000):
            return port
    for port in range(20000, 30000, 7):  # the ephemeral range gave none: pick below it
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free pair of a port and its cluster bus port on loopback")


def start_redis_cluster(folder: Path, masters: int = 3) -> RedisCluster:
    """`masters` cluster-enabled redis-servers joined by `redis-cli --cluster create`."""
    c = RedisCluster([_cluster_port() for _ in range(masters)])
    try:
        for port in c.ports:
            c.procs.append(_server(folder, port, "--cluster-enabled", "yes",
                                   "--cluster-config-file", str(folder / f"nodes-{port}.conf"),
                                   "--cluster-node-timeout", "2000"))
        for port in c.ports:
            wait_until(lambda port=port: _client(port).ping(), f"redis node {port}",
                       procs=c.procs)
        subprocess.run([_exe("redis-cli"), "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in c.ports), "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in c.ports:
            wait_until(lambda port=port: _client(port).cluster("info")["cluster_state"] == "ok",
                       f"cluster state ok on {port}", timeout=30, procs=c.procs)
    except BaseException:
        c.stop()
        raise
    return c


@dataclass
class SentinelPair:
    """A master, its replica and one Sentinel (quorum 1) that fails over in ~2 s."""

    master_port: int
    replica_port: int
    sentinel_port: int
    master: subprocess.Popen | None = None
    replica: subprocess.Popen | None = None
    sentinel: subprocess.Popen | None = None
    service: str = "rgmaster"

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.service}"

    def current_master(self) -> int:
        host, port = _client(self.sentinel_port).execute_command(
            "SENTINEL", "get-master-addr-by-name", self.service)
        return int(port)

    def stop(self) -> None:
        for p in (self.sentinel, self.replica, self.master):
            if p is not None:
                stop(p)


def start_sentinel_pair(folder: Path) -> SentinelPair:
    s = SentinelPair(free_port(), free_port(), free_port())
    try:
        s.master = _server(folder, s.master_port)
        wait_until(lambda: _client(s.master_port).ping(), "redis master", procs=[s.master])
        s.replica = _server(folder, s.replica_port, "--replicaof", "127.0.0.1",
                            str(s.master_port))
        wait_until(lambda: _client(s.replica_port).info("replication")
                   .get("master_link_status") == "up", "replica in sync", timeout=30,
                   procs=[s.replica])
        conf = folder / "sentinel.conf"  # Sentinel rewrites its file: one of its own
        conf.write_text("\n".join([
            f"port {s.sentinel_port}", "bind 127.0.0.1", f"dir {folder}",
            f"sentinel monitor {s.service} 127.0.0.1 {s.master_port} 1",
            f"sentinel down-after-milliseconds {s.service} 1000",
            f"sentinel failover-timeout {s.service} 10000",
            f"sentinel parallel-syncs {s.service} 1", ""]))
        s.sentinel = subprocess.Popen([_exe("redis-server"), str(conf), "--sentinel"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: s.current_master() == s.master_port, "sentinel watching",
                   timeout=30, procs=[s.sentinel])
        # The Sentinel has found the replica (failover needs it).
        wait_until(lambda: _client(s.sentinel_port).execute_command(
            "SENTINEL", "replicas", s.service), "sentinel sees the replica", timeout=30,
            procs=[s.sentinel])
    except BaseException:
        s.stop()
        raise
    return s
