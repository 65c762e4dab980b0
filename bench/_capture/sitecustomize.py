"""Loaded by the worker processes of bench/worker_path.py (this folder on PYTHONPATH,
REMOTEGRAD_CAPTURE_DIR set): the REMOTEGRAD_CAPTURE_CALL-th Execute request a worker runs is
written there, serialized, with the held arrays it reads (pickled), for an in-process
replay of the worker's path. Other processes are left alone."""

import importlib.abc
import os
import pickle
import sys

_DIR = os.environ.get("REMOTEGRAD_CAPTURE_DIR")
_CALL = int(os.environ.get("REMOTEGRAD_CAPTURE_CALL", "30"))

if _DIR and "worker" in sys.argv:
    _count = [0]

    def _patch(module):
        real = module.WorkerServicer._run

        def _run(self, request, tenant, cancel):
            _count[0] += 1
            if _count[0] == _CALL:
                inline = {t.hash for t in request.tensors}
                names = {n.attrs["hash"].s for n in request.graph.nodes if n.op == "leaf"}
                held = {h: self.store.array(tenant, h) for h in names - inline}
                with open(os.path.join(_DIR, f"request-{os.getpid()}.pkl"), "wb") as f:
                    pickle.dump((request.SerializeToString(), tenant, held), f)
            return real(self, request, tenant, cancel)
        module.WorkerServicer._run = _run

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
            if name != "remotegrad.worker.service":
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    spec.loader = _Loader(spec.loader)
                    return spec
            return None

    sys.meta_path.insert(0, _Finder())
