"""One table maps PyTorch's names to the op catalog; methods, in-place methods and module
functions are generated from it.

Each entry says which catalog op a PyTorch name records, PyTorch's positional parameters
after the tensor inputs (keywords are taken by name), and which forms exist: `m` a Tensor
method, `f` a `remotegrad.<name>` function, `i` an in-place method `<name>_`. An entry
whose op the catalog does not have (yet) gets no method or function.

The methods are written out in _tensor_methods.py, generated from this table by
scripts/gen_tensor_methods.py (tests/unit/test_tensor_methods_fresh.py checks it is fresh);
each calls `call` with its PyTorch name (an in-place one assigns the result to self).
"""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from remotegrad.proto import catalog

from . import _dtypes
from ._tensor_base import TensorBase, apply
from ._warn import warn_user

if TYPE_CHECKING:
    from ._tensor import Tensor


@dataclass(frozen=True)
class Spec:
    op: str
    params: tuple[str, ...] = ()        # PyTorch's positional parameters after the inputs
    forms: str = "mf"                   # m: method, f: function, i: in-place method
    inputs: tuple[str, ...] = ("input", "other", "third")  # keyword names of the inputs
    grad: str | Callable[..., str] | None = None  # grad_fn name (default: the catalog's)
    adapt: Callable[[list, dict], tuple[list, dict]] | None = None
    nin: int | None = None              # tensor inputs (default: the catalog's arity)


# --- adapters: PyTorch's argument conventions → catalog attributes ------------------------
def _statistic(name: str) -> Callable[[list, dict], tuple[list, dict]]:
    """var and std: PyTorch's `unbiased` spelling, and its warning when no degrees of
    freedom are left (the value is then nan or inf, as there)."""
    def adapt(operands: list, kw: dict) -> tuple[list, dict]:
        unbiased = kw.pop("unbiased", None)
        if isinstance(kw.get("dim"), builtins.bool):  # var(True): the old unbiased position
            unbiased = kw.pop("dim")
        if unbiased is not None and kw.get("correction") is None:
            kw["correction"] = 1 if unbiased else 0
        if kw.get("correction") is None:
            kw.pop("correction", None)
        _warn_no_dof(name, operands[0], kw.get("dim"), kw.get("correction", 1))
        return operands, kw
    return adapt


def _warn_no_dof(name: str, x, dim, correction) -> None:
    if not (isinstance(x, TensorBase) and x.is_floating_point()):
        return  # the op's rule refuses the dtype first
    shape = tuple(x.shape)
    try:
        dims = catalog.normalize_dims(dim, len(shape))
    except catalog.OpError:
        return  # the op's own rule reports a bad dim
    n = catalog.numel(tuple(shape[d] for d in dims)) if shape else 1
    if n - correction <= 0:
        warn_user(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less "
                  "than the reduction factor (input numel divided by output numel).")


def _norm(operands: list, kw: dict) -> tuple[list, dict]:
    p = kw.get("p", "fro")
    kw["p"] = 2.0 if p in ("fro", None) else builtins.float(p)
    return operands, kw


def _clamp(operands: list, kw: dict) -> tuple[list, dict]:
    if kw.get("min") is None and kw.get("max") is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return operands, kw


def _pow(operands: list, kw: dict) -> tuple[list, dict]:
    base, exponent = operands[0], operands[1]
    if (isinstance(base, TensorBase) and isinstance(exponent, builtins.int)
            and not isinstance(exponent, builtins.bool) and exponent < 0
            and base.dtype.name in catalog.INTEGRAL | {"bool"}):
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return operands, kw


def _softmax(operands: list, kw: dict) -> tuple[list, dict]:
    kw.pop("_stacklevel", None)
    if kw.get("dim") is None:
        raise TypeError("softmax() missing required argument 'dim'")
    return operands, kw


def _dim_name(backward0: str, backward1: str) -> Callable[..., str]:
    return lambda operands, attrs: backward0 if attrs.get("dim") is None else backward1


def _number(x: Any) -> bool:
    return isinstance(x, (builtins.bool, builtins.int, builtins.float))


def _pow_name(operands: list, attrs: dict) -> str:
    if _number(operands[0]):
        return "PowBackward2"
    return "PowBackward0" if _number(operands[1]) else "PowBackward1"


def _matmul_name(operands: list, attrs: dict) -> str:
    a, b = operands[:2]
    dims = (a.ndim, b.ndim)
    named = {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (1, 2): "SqueezeBackward4",
             (2, 2): "MmBackward0"}.get(dims)
    if named:
        return named
    # A matrix times a batch, when the matrix needs a gradient, is folded the other way
    # round ((b^T a^T)^T) and made contiguous: PyTorch's last node is then a clone. So is a
    # single-batch left operand against a 3-d batch.
    folded = dims[1] >= 3 and (dims[0] == 2 or (
        dims == (3, 3) and a.shape[0] == 1 and b.shape[0] != 1))
    if not (folded and a.requires_grad):
        return "UnsafeViewBackward0"
    # The transpose back is already contiguous (no clone) when a side of the result is 1
    # or the result is empty.
    n, p = a.shape[-2], b.shape[-1]
    empty = n * p * math.prod(b.shape[:-2]) == 0
    return "TransposeBackward0" if empty or 1 in (n, p) else "CloneBackward0"


def _div_name(operands: list, attrs: dict) -> str:
    return "DivBackward0" if attrs.get("rounding_mode") is None else "DivBackward2"


def _by_operands(scalar: str, tensor: str, number_first: str = "NotImplemented"):
    """remainder/fmod: PyTorch's node for a Python number divisor (Backward0), a tensor one
    (Backward1); a number dividend is its non-differentiable overload (`NotImplemented`)."""
    def name(operands: list, attrs: dict) -> str:
        if _number(operands[0]):
            return number_first
        return scalar if _number(operands[1]) else tensor
    return name


def _floor(operands: list, kw: dict) -> tuple[list, dict]:
    kw["rounding_mode"] = "floor"
    return operands, kw


def _move(*names: str):
    """PyTorch passes these tensors after `dim` (index_select(input, dim, index))."""
    def adapt(operands: list, kw: dict) -> tuple[list, dict]:
        for n in names:
            if n not in kw:
                raise TypeError(f"missing required argument '{n}'")
            operands.append(kw.pop(n))
        return operands, kw
    return adapt


def _scatter(operands: list, kw: dict) -> tuple[list, dict]:
    """scatter(dim, index, src) or scatter(dim, index, value): a tensor src is an input of
    the catalog op, a number its `value` attribute."""
    if kw.get("reduce") is not None:
        raise NotImplementedError("scatter: reduce= is not supported by remotegrad yet")
    kw.pop("reduce", None)
    if "index" not in kw:
        raise TypeError("scatter() missing required argument 'index'")
    operands.append(kw.pop("index"))
    if "src" in kw and "value" in kw:
        raise TypeError("scatter() got multiple values for argument 'src'")
    if "src" not in kw and "value" not in kw:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    given = "src" if "src" in kw else "value"
    src = kw.pop(given)
    if isinstance(src, TensorBase) and given == "src":
        operands.append(src)
    elif isinstance(src, numbers.Number):  # (a third positional argument binds as src)
        kw["value"] = src
    else:
        raise TypeError(f"scatter(): argument '{given}' must be "
                        f"{'Tensor' if given == 'src' else 'Number'}, not {type(src).__name__}")
    return operands, kw


def _scatter_name(operands: list, attrs: dict) -> str:
    return "ScatterBackward0" if len(operands) == 3 else "ScatterBackward1"


_CLAMP = dict(params=("min", "max"), forms="mfi", adapt=_clamp)
_RED = ("dim", "keepdim")
_SUM = dict(params=_RED, grad=_dim_name("SumBackward0", "SumBackward1"))

TABLE: dict[str, Spec] = {
    # arithmetic
    "add": Spec("add", forms="mfi"), "sub": Spec("sub", forms="mfi"),
    "subtract": Spec("sub", forms="mfi"), "mul": Spec("mul", forms="mfi"),
    "multiply": Spec("mul", forms="mfi"),
    "div": Spec("div", params=("rounding_mode",), forms="mfi", grad=_div_name),
    "divide": Spec("div", params=("rounding_mode",), forms="mfi", grad=_div_name),
    "true_divide": Spec("div", forms="mfi"),
    "pow": Spec("pow", forms="mfi", inputs=("input", "exponent"), grad=_pow_name,
                adapt=_pow),
    "neg": Spec("neg", forms="mfi"), "negative": Spec("neg", forms="mfi"),
    "abs": Spec("abs", forms="mfi"), "absolute": Spec("abs", forms="mfi"),
    "sign": Spec("sign", forms="mfi"), "reciprocal": Spec("reciprocal", forms="mfi"),
    "maximum": Spec("maximum"), "minimum": Spec("minimum"),
    "fmod": Spec("fmod", forms="mfi", grad=_by_operands("FmodBackward0", "FmodBackward1")),
    "remainder": Spec("remainder", forms="mfi",
                      grad=_by_operands("RemainderBackward0", "RemainderBackward1")),
    # PyTorch's floor_divide (and //) has no derivative: grad_fn NotImplemented.
    "floor_divide": Spec("div", forms="mfi", grad="NotImplemented", adapt=_floor),
    "clamp": Spec("clamp", **_CLAMP), "clip": Spec("clamp", **_CLAMP),
    "where": Spec("where", forms="f", inputs=("condition", "input", "other")),
    "lerp": Spec("lerp", forms="mfi", inputs=("input", "end", "weight")),
    "addcmul": Spec("addcmul", params=("value",), forms="mfi",
                    inputs=("input", "tensor1", "tensor2")),
    "addcdiv": Spec("addcdiv", params=("value",), forms="mfi",
                    inputs=("input", "tensor1", "tensor2")),
    # math
    **{n: Spec(n, forms="mfi") for n in (
        "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt", "rsqrt", "sin", "cos", "tan",
        "tanh", "sigmoid", "relu", "erf", "floor", "ceil", "trunc", "square",
        "asin", "acos", "atan", "sinh", "cosh", "exp2")},
    "fix": Spec("trunc", forms="mfi"),  # PyTorch's alias of trunc (TruncBackward0)
    # round(x) is RoundBackward0; round(x, decimals=d), d = 0 included, RoundBackward1
    "round": Spec("round", forms="mfi",
                  grad=lambda operands, attrs: "RoundBackward0" if attrs.get("decimals") is None
                  else "RoundBackward1"),
    # comparison and logic
    **{n: Spec(n, forms="mfi") for n in ("eq", "ne", "lt", "le", "gt", "ge")},
    "greater": Spec("gt", forms="mfi"), "greater_equal": Spec("ge", forms="mfi"),
    "less": Spec("lt", forms="mfi"), "less_equal": Spec("le", forms="mfi"),
    "not_equal": Spec("ne", forms="mfi"),
    **{n: Spec(n, forms="mfi") for n in ("logical_and", "logical_or", "logical_xor",
                                         "logical_not")},
    **{n: Spec(n) for n in ("isnan", "isinf", "isfinite")},
    "all": Spec("all", params=_RED), "any": Spec("any", params=_RED),
    # reductions
    "sum": Spec("sum", **_SUM),
    "mean": Spec("mean", params=_RED, grad=_dim_name("MeanBackward0", "MeanBackward1")),
    "prod": Spec("prod", params=_RED, grad=_dim_name("ProdBackward0", "ProdBackward1")),
    "amax": Spec("amax", params=_RED), "amin": Spec("amin", params=_RED),
    "argmax": Spec("argmax", params=_RED), "argmin": Spec("argmin", params=_RED),
    "var": Spec("var", params=("dim", "unbiased", "keepdim"), adapt=_statistic("var"),
                grad=_dim_name("VarBackward0", "VarBackward0")),
    "std": Spec("std", params=("dim", "unbiased", "keepdim"), adapt=_statistic("std")),
    "norm": Spec("norm", params=("p", "dim", "keepdim"), adapt=_norm),
    "logsumexp": Spec("logsumexp", params=_RED),
    "cumsum": Spec("cumsum", params=("dim",), forms="mfi"),
    "softmax": Spec("softmax", params=("dim",), adapt=_softmax),
    "log_softmax": Spec("log_softmax", params=("dim",), adapt=_softmax),
    # linear algebra
    "matmul": Spec("matmul", grad=_matmul_name), "mm": Spec("mm", inputs=("input", "mat2")),
    "bmm": Spec("bmm", inputs=("input", "mat2")), "dot": Spec("dot", inputs=("input", "tensor")),
    "outer": Spec("outer", inputs=("input", "vec2")),
    "ger": Spec("outer", inputs=("input", "vec2")),
    # shape
    "squeeze": Spec("squeeze", params=("dim",), forms="mfi"),
    "unsqueeze": Spec("unsqueeze", params=("dim",), forms="mfi"),
    "transpose": Spec("transpose", params=("dim0", "dim1"), forms="mfi"),
    "swapaxes": Spec("transpose", params=("dim0", "dim1")),
    "swapdims": Spec("transpose", params=("dim0", "dim1")),
    "flip": Spec("flip", params=("dims",)),
    "narrow": Spec("narrow", params=("dim", "start", "length"), grad="SliceBackward0"),
    "tril": Spec("tril", params=("diagonal",), forms="mfi"),
    "triu": Spec("triu", params=("diagonal",), forms="mfi"),
    "index_select": Spec("index_select", nin=1, params=("dim", "index"),
                         adapt=_move("index")),
    "gather": Spec("gather", nin=1, params=("dim", "index"), adapt=_move("index")),
    "scatter_add": Spec("scatter_add", nin=1, params=("dim", "index", "src"), forms="mfi",
                        adapt=_move("index", "src")),
    "scatter": Spec("scatter", nin=1, params=("dim", "index", "src"), forms="mfi",
                    adapt=_scatter, grad=_scatter_name),
    "index_add": Spec("index_add", nin=1, params=("dim", "index", "source"), forms="mfi",
                      adapt=_move("index", "source")),
}

# Ops that the client uses internally or that are not PyTorch functions of their own.
INTERNAL = frozenset({"leaf", "const", "full", "detach", "cast", "reshape", "expand",
                      "sum_to", "grad", "index_backward", "max_pool2d_select",
                      "cross_entropy_rows", "check_targets", "check_unit_interval",
                      "overwrite", "replace", "lerp_kernel", "bce_input_grad",
                      "prod_others"})


def _sum_to_name(operands: list, attrs: dict) -> str:
    """PyTorch's sum_to (the reduction of a broadcast gradient): a sum over the size-1 dims
    (keepdim), then a view when leading dims go; a full sum to a scalar."""
    if not attrs["shape"]:
        return "SumBackward0"
    return "ViewBackward0" if operands[0].ndim > len(attrs["shape"]) else "SumBackward1"


_NAMES: dict[str, str | Callable[..., str]] = {"sum_to": _sum_to_name}
for _spec in TABLE.values():  # an op's own entry first (narrow: SliceBackward0 as PyTorch's)
    if _spec.grad is not None and _spec.op not in _NAMES:
        _NAMES[_spec.op] = TABLE[_spec.op].grad if _spec.op in TABLE else _spec.grad


def grad_name(op: str, operands: list, attrs: dict) -> str:
    """PyTorch's grad_fn name for `op` recorded over `operands` (tensors, or Python numbers
    where the op takes one): the table's name, else the catalog's."""
    name = _NAMES.get(op)
    if callable(name):
        name = name(operands, attrs)
    return name or catalog.get(op).torch_name or f"{op}Backward"


def internal(op: str) -> bool:
    """Ops the engine's derivative rules use, not PyTorch functions of their own."""
    return op in INTERNAL or op.endswith(("_backward", "_grad"))


def _attr(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, _dtypes.dtype):
        return value.name
    if isinstance(value, TensorBase) and value.numel() == 1 and not value.requires_grad:
        return value.item()
    if isinstance(value, np.generic):  # numpy's scalars are Python numbers to PyTorch
        return value.item()
    return value


def bind(name: str, spec: Spec, args: tuple, kwargs: dict) -> tuple[list, dict]:
    """PyTorch-style (args, kwargs) → (operands, catalog attributes)."""
    opdef = catalog.get(spec.op)
    nin = spec.nin if spec.nin is not None else opdef.nin
    operands = list(args[:nin])
    rest = args[nin:]
    kw = dict(kwargs)
    if "axis" in kw and "dim" in spec.params:  # PyTorch's NumPy-style alias
        kw["dim"] = kw.pop("axis")
    for key in spec.inputs[len(operands):nin]:
        if key not in kw:
            raise TypeError(f"{name}() missing required argument '{key}'")
        operands.append(kw.pop(key))
    if len(rest) > len(spec.params):
        raise TypeError(f"{name}() takes {nin + len(spec.params)} positional arguments but "
                        f"{len(args)} were given")
    for key, value in zip(spec.params, rest):
        if key in kw:
            raise TypeError(f"{name}() got multiple values for argument '{key}'")
        kw[key] = value
    if spec.adapt is not None:
        operands, kw = spec.adapt(operands, kw)
    dtype = kw.pop("dtype", None)
    if dtype is not None and "dtype" not in opdef.attrs:
        operands[0] = operands[0].to(dtype)
    if kw.pop("out", None) is not None:
        raise TypeError(f"{name}(): out= is not supported by remotegrad (tensors are immutable "
                        "graph values); assign the result instead")
    unknown = set(kw) - set(opdef.attrs)
    if unknown:
        raise TypeError(f"{name}() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    return operands, {k: _attr(v) for k, v in kw.items() if not (v is None and k in
                                                              _OPTIONAL_NONE)}


_OPTIONAL_NONE = frozenset({"dim", "correction", "min", "max", "rounding_mode"})


def call(name: str, args: tuple, kwargs: dict) -> Tensor:
    spec = TABLE[name]
    operands, attrs = bind(name, spec, args, kwargs)
    grad = spec.grad(operands, attrs) if callable(spec.grad) else spec.grad
    return apply(spec.op, *operands, torch_name=grad, **attrs)


# In-place forms of these may change self's shape (x.squeeze_()).
RESHAPING = frozenset({"squeeze", "unsqueeze", "transpose", "t"})


def _function(name: str):
    def function(*args, **kwargs):
        return call(name, args, kwargs)
    function.__name__ = function.__qualname__ = name
    return function


def functions() -> dict[str, Callable[..., Any]]:
    """The `remotegrad.<name>` function of every available entry with an `f` form."""
    return {name: _function(name) for name, spec in TABLE.items()
            if spec.op in catalog.CATALOG and "f" in spec.forms}


def available(name: str) -> builtins.bool:
    spec = TABLE.get(name)
    return spec is not None and spec.op in catalog.CATALOG
