"""A local cluster for a load test or a benchmark: `remotegrad cluster up` as a child
process on a free loopback port, stopped by its pid (it stops what it started)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["free_port", "local_cluster", "is_loopback"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        import ipaddress
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def local_cluster(workers: int = 2, *extra: str, timeout: float = 90.0,
                  quiet: bool = True) -> Iterator[str]:
    """Yield the gateway address of a fresh `remotegrad cluster up` on 127.0.0.1."""
    port = free_port()
    argv = [sys.executable, "-m", "remotegrad.server.cli", "cluster", "up", "--host",
            "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "WARNING", *extra]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()
    lines: list[str] = []

    def drain() -> None:  # keep reading so the children never block on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            del lines[:-50]
            if not quiet:
                print(line, end="", file=sys.stderr)
            if "cluster ready at" in line:
                ready.set()
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("remotegrad cluster up did not become ready:\n"
                                   + "\n".join(lines[-20:]))
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
