"""Loaded by every Python process started with this folder on PYTHONPATH (bench/profile_step.py
--timers): wall and thread-CPU time of the functions REMOTEGRAD_TIMERS names
("module:Class.method" or "module:function", comma-separated), summed per function and
written to REMOTEGRAD_PROFILE_DIR/<role>-<pid>.json when the process exits. The names are
patched when their module is first imported (an import hook), so every caller sees them."""

import atexit
import functools
import importlib.abc
import json
import os
import sys
import threading
import time

_DIR = os.environ.get("REMOTEGRAD_PROFILE_DIR")
_NAMES = [n for n in os.environ.get("REMOTEGRAD_TIMERS", "").split(",") if n]
if _DIR and _NAMES:
    _totals: dict = {}
    _lock = threading.Lock()
    _wanted: dict = {}
    for name in _NAMES:
        mod, _, attr = name.partition(":")
        _wanted.setdefault(mod, []).append(attr)

    def _timed(label, fn):
        @functools.wraps(fn)
        def run(*a, **k):
            w, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                dw, dc = time.perf_counter() - w, time.thread_time() - c
                with _lock:
                    t = _totals.setdefault(label, [0, 0.0, 0.0])
                    t[0] += 1
                    t[1] += dw
                    t[2] += dc
        return run

    def _patch(module):
        for attr in _wanted.get(module.__name__, ()):
            owner, _, leaf = attr.rpartition(".")
            target = functools.reduce(getattr, owner.split("."), module) if owner else module
            raw = target.__dict__[leaf] if owner else getattr(target, leaf)
            label = f"{module.__name__}:{attr}"
            if isinstance(raw, staticmethod):
                setattr(target, leaf, staticmethod(_timed(label, raw.__func__)))
            else:
                setattr(target, leaf, _timed(label, raw))

    class _Loader(importlib.abc.Loader):
        def __init__(self, inner):
            self.inner = inner

        def create_module(self, spec):
            return self.inner.create_module(spec)

        def exec_module(self, module):
            self.inner.exec_module(module)
            _patch(module)

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in _wanted:
                return None
            for finder in sys.meta_path:
                if finder is self:
                    continue
                spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") \
                    else None
                if spec is not None:
                    spec.loader = _Loader(spec.loader)
                    return spec
            return None

    sys.meta_path.insert(0, _Finder())

    def _dump():
        args = [a for a in sys.argv if not a.startswith("-")]
        role = next((a for a in args if a in ("gateway", "worker", "up")), "proc")
        with open(os.path.join(_DIR, f"{role}-{os.getpid()}.json"), "w") as f:
            json.dump(_totals, f)

    atexit.register(_dump)
