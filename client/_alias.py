"""Submodules under another name for the package: `sys.modules["torch"] = remotegrad`
(how a program written for PyTorch is run unchanged) and then `import torch.nn.modules`,
`import torch.onnx`, `from torch.serialization import ...`.

Python finds such a submodule through the aliased parent's __path__ and would load a second
copy under the alias (a second nn with its own Module class, a second op table). This
finder answers those names with the module already loaded under remotegrad's own name."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

_ROOT = __name__.rpartition(".")[0]  # "remotegrad"


class _Existing(importlib.abc.Loader):
    def __init__(self, real: str) -> None:
        self.real = real

    def create_module(self, spec):
        return importlib.import_module(self.real)

    def exec_module(self, module) -> None:
        pass  # already executed under its own name


class AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None):
        parent, _, child = fullname.rpartition(".")
        module = sys.modules.get(parent) if parent else None
        real_parent = getattr(module, "__name__", None)
        if real_parent is None or real_parent == parent or not (
                real_parent == _ROOT or real_parent.startswith(_ROOT + ".")):
            return None  # not an alias of one of ours: the ordinary finders decide
        real = f"{real_parent}.{child}"
        if real not in sys.modules and importlib.util.find_spec(real) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Existing(real))


def install() -> None:
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())
