"""The import paths custom code uses for the base classes: torch.nn.parameter (Parameter)
and torch.optim.optimizer (Optimizer), reached as under PyTorch, by the alias too."""

from __future__ import annotations

import subprocess
import sys

import torch

import remotegrad as rg


def test_modules_hold_the_same_classes_as_the_package():
    import remotegrad.nn.parameter as parameter
    import remotegrad.optim.optimizer as optimizer
    assert parameter.Parameter is rg.nn.Parameter
    assert optimizer.Optimizer is rg.optim.Optimizer
    # the same names PyTorch's modules give these classes
    from torch.nn.parameter import Parameter
    from torch.optim.optimizer import Optimizer
    assert Parameter is torch.nn.Parameter and Optimizer is torch.optim.Optimizer


def test_a_subclass_through_the_paths_steps_like_pytorch():
    from remotegrad.nn.parameter import Parameter
    from remotegrad.optim.optimizer import Optimizer

    def run(lib, param_cls, optimizer_cls):
        class Halve(optimizer_cls):
            def __init__(self, params):
                super().__init__(params, dict(lr=0.5))

            def step(self):
                for group in self.param_groups:
                    for p in group["params"]:
                        p.data.add_(p.grad, alpha=-group["lr"])

        w = param_cls(lib.tensor([1.0, -2.0, 3.0]))
        opt = Halve([w])
        (w * w).sum().backward()
        opt.step()
        return w.detach().tolist(), opt.defaults

    from torch.nn.parameter import Parameter as TorchParameter
    from torch.optim.optimizer import Optimizer as TorchOptimizer
    assert run(rg, Parameter, Optimizer) == run(torch, TorchParameter, TorchOptimizer)


def test_paths_resolve_through_the_torch_alias():
    code = ("import sys, remotegrad; sys.modules['torch'] = remotegrad\n"
            "from torch.nn.parameter import Parameter\n"
            "from torch.optim.optimizer import Optimizer\n"
            "assert Parameter is remotegrad.nn.Parameter\n"
            "assert Optimizer is remotegrad.optim.Optimizer\n"
            "assert sys.modules['torch.optim.optimizer'] is "
            "sys.modules['remotegrad.optim.optimizer']\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
