"""Installs the op table on Tensor and gathers the module-level functions
(`remotegrad.add`, `remotegrad.matmul`, ...) that `remotegrad/__init__` re-exports."""

from __future__ import annotations

from typing import Any

from remotegrad.proto.catalog import FLOATING
from remotegrad.proto.catalog._types import torch_dtype_name

from . import _ops, _operators, _select, _shape
from ._tensor import Tensor, apply


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return input.clone()


def detach(input: Tensor) -> Tensor:
    return input.detach()


def _clone(self: Tensor, *, memory_format=None) -> Tensor:
    return apply("cast", self, dtype=self._node.meta.dtype, torch_name="CloneBackward0")


Tensor.clone = _clone


# --- composed on the client where the catalog has no op of its own -------------------------
def _square(input: Tensor) -> Tensor:
    return apply("pow", input, 2, torch_name="PowBackward0")


def _addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    if all(isinstance(x, Tensor) and x.dtype.name == "bool" for x in (input, tensor1, tensor2)):
        raise NotImplementedError('"addcmul_cpu_out" not implemented for \'Bool\'')
    if all(_integral(x) for x in (input, tensor1, tensor2)) and isinstance(value, float):
        value = int(value)  # PyTorch casts the scalar to the integer dtype: 0.5 is 0
    return apply("add", input, tensor1 * tensor2 * value, torch_name="AddcmulBackward0")


def _integral(x) -> bool:
    return isinstance(x, Tensor) and x.dtype.name not in FLOATING


def _addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    if _integral(tensor1) and _integral(tensor2):
        raise RuntimeError("Integer division with addcdiv is no longer supported, and in a "
                           "future  release addcdiv will perform a true division of tensor1 "
                           "and tensor2. The historic addcdiv behavior can be implemented as "
                           "(input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) "
                           "for integer inputs and as (input + value * tensor1 / tensor2) for "
                           "float inputs. The future addcdiv behavior is just the latter "
                           "implementation: (input + value * tensor1 / tensor2), for all "
                           "dtypes.")
    return apply("add", input, tensor1 / tensor2 * value, torch_name="AddcdivBackward0")


# The C++ names of dtypes in PyTorch's "expected dtype" messages.
_CPP_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half",
              "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char", "bool": "bool"}


def _lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    if _integral(input):
        kernel = "lerp_kernel_tensor" if isinstance(weight, Tensor) else "lerp_kernel_scalar"
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{torch_dtype_name(input.dtype.name)}'")
    # No promotion: end (and a weight with dims) must have input's dtype, as in PyTorch.
    for what, t in (("end", end), ("weight", weight)):
        if isinstance(t, Tensor) and t.dtype != input.dtype and (what == "end" or t.dim()):
            raise RuntimeError(f"expected dtype {_CPP_NAMES[input.dtype.name]} for `{what}` "
                               f"but got dtype {_CPP_NAMES[t.dtype.name]}")
    # PyTorch's names: LerpBackward0 for a Python number weight, LerpBackward1 for a tensor.
    return apply("add", input, (end - input) * weight,
                 torch_name="LerpBackward1" if isinstance(weight, Tensor) else "LerpBackward0")


COMPOSED = {"square": _square, "addcmul": _addcmul, "addcdiv": _addcdiv, "lerp": _lerp}


def _install_composed() -> dict[str, Any]:
    from remotegrad.proto import catalog
    out = {}
    for name, fn in COMPOSED.items():
        if name in catalog.CATALOG:
            continue
        out[name] = fn
        setattr(Tensor, name, fn)
        setattr(Tensor, f"{name}_", _inplace_of(fn))
    return out


def _inplace_of(fn):
    def method(self, *args, **kwargs):
        self._check_inplace()
        return self._assign(fn(self, *args, **kwargs))
    return method


def _random_fill(name: str):
    def method(self, *args, generator=None, **kwargs):
        from .nn import init
        return getattr(init, name)(self, *args, generator=generator, **kwargs)
    return method


def _install_compare() -> None:
    from . import _compare
    Tensor.allclose = _compare.allclose
    Tensor.isclose = _compare.isclose
    Tensor.equal = _compare.equal


_install_compare()
Tensor.uniform_ = _random_fill("uniform_")
Tensor.normal_ = _random_fill("normal_")

FUNCTIONS: dict[str, Any] = {}
FUNCTIONS.update(_ops.install())
FUNCTIONS.update(_operators.install())
FUNCTIONS.update(_shape.install())
FUNCTIONS.update(_select.install())
FUNCTIONS.update(_install_composed())
FUNCTIONS.update(is_tensor=is_tensor, numel=numel, clone=clone, detach=detach,
                 is_floating_point=lambda input: input.is_floating_point())
