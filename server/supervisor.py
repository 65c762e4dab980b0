"""Keeps `cluster up`'s children running: a child that exits while the cluster is up is
started again with the same command line, after a capped exponential backoff.

A child that exits within `STABLE` seconds of starting is crash-looping: each such exit
doubles its delay (up to the cap), is logged, and is counted; it never stops the others.
The counts go to a small JSON file that `remotegrad status` reads (`state_path`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

log = logging.getLogger("remotegrad.cluster")

STABLE = 10.0  # seconds a child must run for its next exit not to count as a crash loop
CRASH_LOOP = 3  # consecutive quick exits from which a child is said to be crash-looping


def state_path(port: int) -> str:
    """Where `cluster up` serving gateway port `port` keeps its children's restart counts."""
    return os.path.join(tempfile.gettempdir(), f"remotegrad-cluster-{port}.json")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if `cluster up` itself dies, even by SIGKILL (Linux), so
    nothing it started is left running."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


@dataclass
class Child:
    """One supervised process: its name (`redis`, `gateway`, `worker-0`) and command."""

    name: str
    argv: list[str]
    env: dict | None = None
    quiet: bool = False
    last: bool = False  # stopped after the others (Redis: they deregister through it)
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    quick_exits: int = 0  # consecutive exits within STABLE s of starting
    crash_loops: int = 0  # exits counted while crash-looping
    last_exit: str = ""
    restart_at: float | None = None  # when a child that exited starts again

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, env=self.env, preexec_fn=_die_with_parent,
            stdout=subprocess.DEVNULL if self.quiet else None)
        self.started = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Supervisor:
    port: int
    initial: float = 0.5
    maximum: float = 30.0
    children: list[Child] = field(default_factory=list)

    def add(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        self.save()
        return child

    def delay(self, child: Child) -> float:
        return min(self.maximum, self.initial * 2 ** max(0, child.quick_exits - 1))

    def _exited(self, child: Child, now: float) -> None:
        ran = now - child.started
        child.quick_exits = child.quick_exits + 1 if ran < STABLE else 1
        child.last_exit = describe_exit(child.proc.returncode)
        wait = self.delay(child)
        child.restart_at = now + wait
        if child.quick_exits >= CRASH_LOOP:
            child.crash_loops += 1
            log.warning("%s (pid %d) is crash-looping: exited with %s after %.1fs, %d times "
                        "in a row within %.0fs of starting; restart %d in %.1fs", child.name,
                        child.proc.pid, child.last_exit, ran, child.quick_exits, STABLE,
                        child.restarts + 1, wait)
        else:
            log.warning("%s (pid %d) exited with %s after %.1fs; restart %d in %.1fs",
                        child.name, child.proc.pid, child.last_exit, ran, child.restarts + 1,
                        wait)

    def tick(self) -> None:
        """Notice children that exited; start again those whose delay has passed."""
        now = time.monotonic()
        changed = False
        for child in self.children:
            if child.restart_at is None and not child.running:
                self._exited(child, now)
                changed = True
            elif child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                child.start()
                log.warning("%s restarted (pid %d, restart %d)", child.name, child.proc.pid,
                            child.restarts)
                changed = True
        if changed:
            self.save()

    def save(self) -> None:
        """Write the children's pids and restart counts for `remotegrad status` (atomically:
        a reader never sees half a file)."""
        state = {"pid": os.getpid(), "port": self.port, "children": [
            {"name": c.name, "pid": c.proc.pid if c.running else None, "restarts": c.restarts,
             "crash_loops": c.crash_loops, "last_exit": c.last_exit} for c in self.children]}
        path = state_path(self.port)
        # A fresh file of our own (mkstemp: never a name someone else prepared in /tmp)
        # renamed over the old one.
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path), dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(state, f)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("cannot write %s: %s", path, e)
            os.unlink(tmp)

    def stop(self, grace: float) -> None:
        """SIGTERM every child (those marked `last` once the others are gone), give them
        `grace` seconds to drain, then SIGKILL."""
        deadline = time.monotonic() + grace
        for c in self.children:
            c.restart_at = None
        for group in ([c for c in self.children if not c.last],
                      [c for c in self.children if c.last]):
            for c in reversed(group):
                if c.running:
                    c.proc.send_signal(signal.SIGTERM)
            for c in reversed(group):
                self._reap(c, deadline, grace)
        try:
            os.unlink(state_path(self.port))
        except OSError:
            pass

    @staticmethod
    def _reap(c: Child, deadline: float, grace: float) -> None:
        if c.proc is None:
            return
        try:
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) still running %.0fs after SIGTERM; killing it", c.name,
                        c.proc.pid, grace)
            c.proc.kill()
            c.proc.wait()
