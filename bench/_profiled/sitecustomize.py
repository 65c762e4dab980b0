"""Loaded by every Python process started with this folder on PYTHONPATH (bench/train_step.py
--profile DIR): cProfile in each thread of the process, merged and written to
DIR/<argv tag>-<pid>.prof when it exits. One profiler per thread: cProfile follows one
thread's calls, and the gateway's and worker's gRPC handlers run in pool threads."""

import atexit
import cProfile
import os
import sys
import threading

_DIR = os.environ.get("REMOTEGRAD_PROFILE_DIR")
if _DIR:
    _profiles = []
    _lock = threading.Lock()

    def _start(*_):
        prof = cProfile.Profile()
        with _lock:
            _profiles.append(prof)
        prof.enable()  # replaces this hook for the thread

    def _dump():
        import pstats
        for p in _profiles:
            p.disable()
        args = [a for a in sys.argv if not a.startswith("-")]
        role = next((a for a in args if a in ("gateway", "worker", "up")), "proc")
        path = os.path.join(_DIR, f"{role}-{os.getpid()}.prof")
        stats = [p for p in _profiles if p.getstats()]
        if stats:
            pstats.Stats(*stats).dump_stats(path)

    threading.setprofile(_start)
    _start()
    atexit.register(_dump)
