"""The ops composed on the client where the catalog has none of its own (square, addcmul,
addcdiv, lerp, scatter_reduce, clamp_min/max: their methods are in _tensor_methods), and the
module-level functions (`remotegrad.add`, `remotegrad.matmul`, ...) that
`remotegrad/__init__` re-exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from remotegrad.proto import catalog
from remotegrad.proto.catalog import FLOATING
from remotegrad.proto.catalog._types import result_type, torch_dtype_name

from . import (_bucketize, _clamp, _composites, _dtype_functions, _inplace_functions, _operators,
               _ops, _scatter_reduce, _select, _shape, _special_fns, _stacking)
from ._tensor_base import TensorBase, apply

if TYPE_CHECKING:
    from ._tensor import Tensor


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, TensorBase)


def numel(input: Tensor) -> int:
    return input.numel()


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return input.clone()


def detach(input: Tensor) -> Tensor:
    return input.detach()


# --- composed on the client where the catalog has no op of its own -------------------------
def _square(input: Tensor) -> Tensor:
    return apply("pow", input, 2)  # PowBackward0, the op table's name


def _addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    if all(isinstance(x, TensorBase) and x.dtype.name == "bool"
           for x in (input, tensor1, tensor2)):
        raise NotImplementedError('"addcmul_cpu_out" not implemented for \'Bool\'')
    if all(_integral(x) for x in (input, tensor1, tensor2)) and isinstance(value, float):
        value = int(value)  # PyTorch casts the scalar to the integer dtype: 0.5 is 0
    tensor1, tensor2 = _in_result_dtype(input, tensor1, tensor2)
    if isinstance(value, TensorBase) or "addcmul_kernel" not in catalog.CATALOG:
        # (an optimiser's step scalar: data, not an attribute)
        return apply("add", input, tensor1 * tensor2 * value, torch_name="AddcmulBackward0")
    # one kernel, as PyTorch's: its fused float32 rounding (the composite rounds twice)
    return apply("addcmul_kernel", input, tensor1, tensor2, value=value,
                 torch_name="AddcmulBackward0")


def _in_result_dtype(input, tensor1, tensor2) -> tuple:
    """addcmul/addcdiv's tensors cast to the result's floating dtype first: PyTorch's rules
    cast the gradient of a tensor1 or tensor2 of another dtype back to it explicitly (its
    last op a ToCopyBackward0), which the cast's rule does here."""
    tensors = [x for x in (input, tensor1, tensor2) if isinstance(x, TensorBase)]
    dtype = result_type([x._node.meta for x in tensors])
    if dtype not in FLOATING:
        return tensor1, tensor2
    return tuple(apply("cast", x, dtype=dtype)
                 if isinstance(x, TensorBase) and x.dtype.name != dtype
                 and x.dtype.name in FLOATING else x for x in (tensor1, tensor2))


def _integral(x) -> bool:
    return isinstance(x, TensorBase) and x.dtype.name not in FLOATING


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
    tensor1, tensor2 = _in_result_dtype(input, tensor1, tensor2)
    if isinstance(value, TensorBase):
        # An optimiser's step scalar (optim/_optimizer.step_scalar): data, not an attribute,
        # so every step has one structure (and is not read here). value * tensor1 is the
        # product the kernel makes first, so the values are the same.
        tensor1, value = tensor1 * value, 1.0
    # one op with PyTorch's derivatives (div's rule differs at second order)
    return apply("addcdiv_kernel", input, tensor1, tensor2, value=float(value),
                 torch_name="AddcdivBackward0")


# The C++ names of dtypes in PyTorch's "expected dtype" messages.
_CPP_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half",
              "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char", "bool": "bool"}


def _lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    # No promotion: end (and a weight with dims) must have input's dtype, as in PyTorch.
    for what, t in (("end", end), ("weight", weight)):
        if isinstance(t, TensorBase) and t.dtype != input.dtype and (what == "end" or t.dim()):
            raise RuntimeError(f"expected dtype {_CPP_NAMES[input.dtype.name]} for `{what}` "
                               f"but got dtype {_CPP_NAMES[t.dtype.name]}")
    # PyTorch's kernel runs in the dtype common to the three tensors: a floating 0-d weight
    # tensor makes it floating (lerp of int64 start and end is then a float result)
    if _integral(input) and not (isinstance(weight, TensorBase) and not weight.dim()
                                 and weight.dtype.name in FLOATING):
        kernel = ("lerp_kernel_tensor" if isinstance(weight, TensorBase)
                  else "lerp_kernel_scalar")
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{torch_dtype_name(input.dtype.name)}'")
    # PyTorch's names: LerpBackward0 for a Python number weight, LerpBackward1 for a tensor.
    return apply("lerp_kernel", input, end, weight,
                 torch_name="LerpBackward1" if isinstance(weight, TensorBase)
                 else "LerpBackward0")


COMPOSED = {"square": _square, "addcmul": _addcmul, "addcdiv": _addcdiv, "lerp": _lerp,
            "scatter_reduce": _scatter_reduce.scatter_reduce, "clamp_min": _clamp.clamp_min,
            "clamp_max": _clamp.clamp_max,
            **{n: getattr(_composites, n) for n in (
                "diff", "roll", "movedim", "moveaxis", "trace", "addmm", "diag", "diagonal",
                "tile", "masked_select", "take_along_dim", "frac", "sgn", "nan_to_num",
                "cross", "kron", "cumprod", "fmax", "fmin", "count_nonzero")}}


def composed() -> dict[str, Any]:
    """The composed ops the catalog does not have (yet): Tensor methods (and in-place
    forms, in _tensor_methods) and module functions."""
    return {name: fn for name, fn in COMPOSED.items() if name not in catalog.CATALOG}


FUNCTIONS: dict[str, Any] = {}
FUNCTIONS.update(_ops.functions())
FUNCTIONS.update(_operators.functions())
FUNCTIONS.update(_shape.functions())
FUNCTIONS.update(_select.FUNCTIONS)
FUNCTIONS.update(composed())
FUNCTIONS.update(_dtype_functions.FUNCTIONS)
FUNCTIONS.update(_bucketize.FUNCTIONS)
FUNCTIONS.update(_special_fns.FUNCTIONS)  # polygamma (n first), var_mean, std_mean
FUNCTIONS.update(tril_indices=_composites.tril_indices, triu_indices=_composites.triu_indices,
                 tensordot=_composites.tensordot)
FUNCTIONS.update({name: getattr(_stacking, name) for name in (
    "atleast_1d", "atleast_2d", "atleast_3d", "hstack", "vstack", "dstack", "column_stack",
    "meshgrid")})
FUNCTIONS.update(is_tensor=is_tensor, numel=numel, clone=clone, detach=detach,
                 is_floating_point=lambda input: input.is_floating_point())
FUNCTIONS.update(_inplace_functions.FUNCTIONS)  # torch.sin_(x), torch.selu_(x), ...


def _guarded() -> None:
    """PyTorch's refusals of numbers and missing arguments (_arg_check) before the table's
    functions (wherever they are written)."""
    from ._arg_check import FIRST_TENSOR, TENSOR_LISTS, guard, guard_first
    for name in (FIRST_TENSOR.keys() | TENSOR_LISTS) - _ops.TABLE.keys():
        if name in FUNCTIONS:
            FUNCTIONS[name] = guard_first(name, FUNCTIONS[name])
    for name, spec in _ops.TABLE.items():
        fn = FUNCTIONS.get(name)
        nin = spec.nin if spec.nin is not None else catalog.get(spec.op).nin \
            if spec.op in catalog.CATALOG else -1
        if fn is not None and "f" in spec.forms and nin >= 1:
            FUNCTIONS[name] = guard(name, fn, spec.inputs, nin)


_guarded()
