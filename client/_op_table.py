"""The client's op table: one Row per catalog op for everything PyTorch-facing about it.

A row holds the PyTorch names that record the op (each a Spec: Tensor method `m`,
`remotegrad.<name>` function `f`, in-place method `i`, PyTorch's positional parameters and
argument conventions), the grad_fn name PyTorch gives its node, and which tensors that
node saves for backward. The catalog (remotegrad.proto.catalog) holds what the engine
needs; nothing here is seen by a worker.

Defaults, so that most rows are short and an op added to the catalog needs a row only to be
reachable from PyTorch code:
- grad_fn name: the op's name in CamelCase + "Backward0" (`log_softmax` →
  `LogSoftmaxBackward0`); `grad` gives another, `namer` one that depends on the operands.
- saves: None, "PyTorch's node saves something not modelled here" (a second backward
  without retain_graph fails, and no in-place check is made); "" saves nothing; codes
  (see SAVES) name the tensors saved.
- names: none (the op is reached through other client code: nn.functional, Tensor.max...).
Ops that the engine's rules use and that are not PyTorch functions are `internal`.

_ops.py binds and records calls through this table; the methods are written out in
_tensor_methods.py by scripts/gen_tensor_methods.py. PyTorch nodes that the client's
composites record without an op of their own (`TBackward0`, `RsubBackward0`, ...) are in
NODES.
"""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from remotegrad.proto import catalog
from remotegrad.proto.catalog.indexing import parse_key, whole_slice

from ._warn import warn_user

Namer = Callable[[list, dict], str]


@dataclass(frozen=True)
class Spec:
    """One PyTorch name of an op."""

    op: str = ""                        # the catalog op (filled in from its row)
    params: tuple[str, ...] = ()        # PyTorch's positional parameters after the inputs
    forms: str = "mf"                   # m: method, f: function, i: in-place method
    inputs: tuple[str, ...] = ("input", "other", "third")  # keyword names of the inputs
    grad: str | Namer | None = None     # grad_fn name (default: the row's)
    adapt: Callable[[list, dict], tuple[list, dict]] | None = None
    nin: int | None = None              # tensor inputs (default: the catalog's arity)


@dataclass(frozen=True)
class Row:
    names: dict[str, Spec] = field(default_factory=dict)  # PyTorch name -> its Spec
    grad: str | None = None             # static grad_fn name (default: derived from the op)
    namer: str | Namer | None = None    # the name for given operands, where it varies
    saves: str | dict[str, str] | None = None  # SAVES codes: one, or per grad_fn name
    internal: bool = False              # used by derivative rules, no PyTorch function
    view: bool = False                  # PyTorch's counterpart returns a view of its input


def _is_tensor(x: Any) -> bool:
    """A client tensor (TensorBase, whose module imports this one: no isinstance here)."""
    return hasattr(x, "_node")


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
    if not (_is_tensor(x) and x.is_floating_point()):
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
    if (_is_tensor(base) and isinstance(exponent, builtins.int)
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
    if _is_tensor(src) and given == "src":
        operands.append(src)
    elif isinstance(src, numbers.Number):  # (a third positional argument binds as src)
        kw["value"] = src
    else:
        raise TypeError(f"scatter(): argument '{given}' must be "
                        f"{'Tensor' if given == 'src' else 'Number'}, not {type(src).__name__}")
    return operands, kw


def _scatter_name(operands: list, attrs: dict) -> str:
    return "ScatterBackward0" if len(operands) == 3 else "ScatterBackward1"


def _sum_to_name(operands: list, attrs: dict) -> str:
    """PyTorch's sum_to (the reduction of a broadcast gradient): a sum over the size-1 dims
    (keepdim), then a view when leading dims go; a full sum to a scalar."""
    if not attrs["shape"]:
        return "SumBackward0"
    return "ViewBackward0" if operands[0].ndim > len(attrs["shape"]) else "SumBackward1"


def _index_name(operands: list, attrs: dict) -> str:
    """A basic index a derivative rule records (stack's select): the last view PyTorch's
    applySlicing applies (a whole slice among several items is skipped); a tensor in the
    key makes it an advanced index. (The SDK names a user's index itself: _shape.)"""
    items = parse_key(attrs["key"])
    if any(kind == "tensor" for kind, *_ in items):
        return "IndexBackward0"
    if len(items) == 1 and items[0][0] == "slice":
        return "SliceBackward0"
    return last_view(items, tuple(operands[0].shape))


def last_view(items: list[tuple], shape: tuple[int, ...]) -> str:
    """PyTorch's grad_fn for a basic index of several items (parsed: indexing.parse_key)
    into a tensor of `shape`: the last op its applySlicing applies. A slice that keeps a
    whole dim is skipped there; when nothing is applied the result is an alias."""
    used = sum(1 for kind, *_ in items if kind not in ("none", "ellipsis"))
    dim, name = 0, "AliasBackward0"
    for kind, *value in items:
        if kind == "ellipsis":
            dim += len(shape) - used
        elif kind == "none":
            name = "UnsqueezeBackward0"
        elif kind == "slice":
            name = name if whole_slice(value[0], shape[dim]) else "SliceBackward0"
            dim += 1
        else:
            name, dim = "SelectBackward0", dim + 1
    return name


def _round_name(operands: list, attrs: dict) -> str:
    # round(x) is RoundBackward0; round(x, decimals=d), d = 0 included, RoundBackward1
    return "RoundBackward0" if attrs.get("decimals") is None else "RoundBackward1"


# PyTorch's nll_loss nodes save its input, target and weight; cross_entropy's input there is
# log_softmax's result (not the user's), so the codes (one per name) leave the input out.
_NLL_SAVES = {"NllLossBackward0": "bc", "NllLoss2DBackward0": "bc"}
# Spec shorthands: a method and function (MF), with the in-place method too (MFI).
MF, MFI = Spec(), Spec(forms="mfi")
_CLAMP = Spec(params=("min", "max"), forms="mfi", adapt=_clamp)
_RED = ("dim", "keepdim")
_DIV = Spec(params=("rounding_mode",), forms="mfi")
_TRANSPOSE = Spec(params=("dim0", "dim1"))
_STAT = ("dim", "unbiased", "keepdim")
_INTERNAL = Row(internal=True)


def _same(*ops: str, spec: Spec = MFI, saves: str | None = None) -> dict[str, Row]:
    """Rows of ops whose one name is their own."""
    return {op: Row(names={op: spec}, saves=saves) for op in ops}


ROWS: dict[str, Row] = {
    # --- arithmetic ---------------------------------------------------------------------
    "add": Row(names={"add": MFI}, saves=""),
    "sub": Row(names={"sub": MFI, "subtract": MFI}, saves=""),
    "mul": Row(names={"mul": MFI, "multiply": MFI}, saves="AB"),
    "div": Row(names={"div": _DIV, "divide": _DIV, "true_divide": MFI,
                      # PyTorch's floor_divide (and //) has no derivative
                      "floor_divide": Spec(forms="mfi", grad="NotImplemented", adapt=_floor)},
               namer=_div_name, saves={"DivBackward0": "Ab", "DivBackward2": "Ab"}),
    "pow": Row(names={"pow": Spec(forms="mfi", inputs=("input", "exponent"), adapt=_pow)},
               namer=_pow_name,
               saves={"PowBackward0": "a", "PowBackward1": "abr", "PowBackward2": "r"}),
    "neg": Row(names={"neg": MFI, "negative": MFI}, saves=""),
    "abs": Row(names={"abs": MFI, "absolute": MFI}, saves="a"),
    "sign": Row(names={"sign": MFI}, saves=""),
    "reciprocal": Row(names={"reciprocal": MFI}, saves="r"),
    "maximum": Row(names={"maximum": MF}, saves="ab"),
    "minimum": Row(names={"minimum": MF}, saves="ab"),
    "fmod": Row(names={"fmod": MFI}, namer=_by_operands("FmodBackward0", "FmodBackward1"),
                saves={"FmodBackward0": "", "FmodBackward1": "AS"}),
    "remainder": Row(names={"remainder": MFI},
                     namer=_by_operands("RemainderBackward0", "RemainderBackward1"),
                     saves={"RemainderBackward0": "", "RemainderBackward1": "AS"}),
    "clamp": Row(names={"clamp": _CLAMP, "clip": _CLAMP}, grad="ClampBackward1", saves="a"),
    "where": Row(names={"where": Spec(forms="f", inputs=("condition", "input", "other"))},
                 saves="a"),  # the condition
    "lerp": Row(names={"lerp": Spec(forms="mfi", inputs=("input", "end", "weight"))}),
    "addcmul": Row(names={"addcmul": Spec(params=("value",), forms="mfi",
                                          inputs=("input", "tensor1", "tensor2"))}),
    "addcdiv": Row(names={"addcdiv": Spec(params=("value",), forms="mfi",
                                          inputs=("input", "tensor1", "tensor2"))}),
    # --- math functions -----------------------------------------------------------------
    **_same("log", "log2", "log10", "sin", "cos", "erf", "asin", "acos", "atan", "sinh",
            "cosh", saves="a"),
    "log1p": Row(names={"log1p": MFI}, grad="Log1PBackward0", saves="a"),
    **_same("exp", "expm1", "exp2", "sqrt", "rsqrt", "tan", "tanh", "sigmoid", "relu",
            saves="r"),
    **_same("floor", "ceil", saves=""),
    "square": Row(names={"square": MFI}),
    "trunc": Row(names={"trunc": MFI, "fix": MFI}, saves=""),  # fix: PyTorch's alias
    "round": Row(names={"round": MFI}, namer=_round_name,
                 saves={"RoundBackward0": "", "RoundBackward1": ""}),
    # special_math (catalog): PyTorch's names and aliases
    "asinh": Row(names={"asinh": MFI, "arcsinh": MFI}, saves="a"),
    "acosh": Row(names={"acosh": MFI, "arccosh": MFI}, saves="a"),
    "atanh": Row(names={"atanh": MFI, "arctanh": MFI}, saves="a"),
    **_same("erfc", "erfinv", "lgamma", "digamma", "sinc", saves="a"),
    # torch.polygamma(n, input) takes n first: _special_fns.polygamma is the function
    "polygamma": Row(names={"polygamma": Spec(params=("n",), forms="mi")}, saves="a"),
    "logit": Row(names={"logit": Spec(params=("eps",), forms="mfi")}, saves="a"),
    "deg2rad": Row(names={"deg2rad": MFI}, grad="Deg2RadBackward0", saves=""),
    "rad2deg": Row(names={"rad2deg": MFI}, grad="Rad2DegBackward0", saves=""),
    # (tensors only, as PyTorch's parser: _arg_check.TENSORS_ONLY)
    "atan2": Row(names={"atan2": MFI, "arctan2": MFI}, saves="ab"),
    "hypot": Row(names={"hypot": MFI}, saves="abr"),
    # --- comparison and logic (not differentiable: no grad_fn) -----------------------------
    **_same("eq", "logical_and", "logical_or", "logical_xor", "logical_not"),
    "ne": Row(names={"ne": MFI, "not_equal": MFI}),
    "lt": Row(names={"lt": MFI, "less": MFI}),
    "le": Row(names={"le": MFI, "less_equal": MFI}),
    "gt": Row(names={"gt": MFI, "greater": MFI}),
    "ge": Row(names={"ge": MFI, "greater_equal": MFI}),
    **_same("isnan", "isinf", "isfinite", spec=MF),
    **_same("all", "any", "argmax", "argmin", spec=Spec(params=_RED)),
    **_same("amax", "amin", "logsumexp", spec=Spec(params=_RED), saves="ar"),
    # --- reductions -----------------------------------------------------------------------
    "sum": Row(names={"sum": Spec(params=_RED)},
               namer=_dim_name("SumBackward0", "SumBackward1"),
               saves={"SumBackward0": "", "SumBackward1": ""}),
    "mean": Row(names={"mean": Spec(params=_RED)},
                namer=_dim_name("MeanBackward0", "MeanBackward1"),
                saves={"MeanBackward0": "", "MeanBackward1": ""}),
    "prod": Row(names={"prod": Spec(params=_RED)},
                namer=_dim_name("ProdBackward0", "ProdBackward1"),
                saves={"ProdBackward0": "ar", "ProdBackward1": "ar"}),
    "var": Row(names={"var": Spec(params=_STAT, adapt=_statistic("var"))}, saves="a"),
    "std": Row(names={"std": Spec(params=_STAT, adapt=_statistic("std"))}, saves="ar"),
    "norm": Row(names={"norm": Spec(params=("p", "dim", "keepdim"), adapt=_norm)},
                grad="LinalgVectorNormBackward0", saves="ar"),
    "cumsum": Row(names={"cumsum": Spec(params=("dim",), forms="mfi")}, saves=""),
    # (dtype positional too: softmax(input, int dim, ScalarType? dtype=None))
    "softmax": Row(names={"softmax": Spec(params=("dim", "dtype"), adapt=_softmax)},
                   saves="r"),
    "log_softmax": Row(names={"log_softmax": Spec(params=("dim", "dtype"), adapt=_softmax)},
                       saves="r"),
    "max": Row(grad="MaxBackward1", saves="ar"),  # Tensor.max (_select.py): values, indices
    "min": Row(grad="MinBackward1", saves="ar"),
    # --- linear algebra -----------------------------------------------------------------
    "matmul": Row(names={"matmul": MF}, grad="MmBackward0", namer=_matmul_name,
                  saves={"MmBackward0": "AB", "MvBackward0": "AB", "DotBackward0": "AB",
                         "UnsafeViewBackward0": "", "TransposeBackward0": "",
                         "CloneBackward0": "", "SqueezeBackward4": ""}),
    "mm": Row(names={"mm": Spec(inputs=("input", "mat2"))}, saves="AB"),
    "bmm": Row(names={"bmm": Spec(inputs=("input", "mat2"))}, saves="AB"),
    "dot": Row(names={"dot": Spec(inputs=("input", "tensor"))}, saves="AB"),
    "outer": Row(names={"outer": Spec(inputs=("input", "vec2")),
                        "ger": Spec(inputs=("input", "vec2"))}, grad="MulBackward0",
                 saves="AB"),
    "einsum": Row(),  # remotegrad.einsum (_functional.py): equation first
    # --- shape --------------------------------------------------------------------------
    "squeeze": Row(names={"squeeze": Spec(params=("dim",), forms="mfi")}, saves="",
                   view=True),
    "unsqueeze": Row(names={"unsqueeze": Spec(params=("dim",), forms="mfi")}, saves="",
                     view=True),
    "transpose": Row(names={"transpose": Spec(params=("dim0", "dim1"), forms="mfi"),
                            "swapaxes": _TRANSPOSE, "swapdims": _TRANSPOSE}, saves="",
                     view=True),
    "flip": Row(names={"flip": Spec(params=("dims",))}, saves=""),
    # PyTorch records narrow as a slice; NarrowBackward0 where the client names it so
    "narrow": Row(names={"narrow": Spec(params=("dim", "start", "length"))},
                  namer="SliceBackward0",
                  saves={"SliceBackward0": "", "NarrowBackward0": ""}, view=True),
    "tril": Row(names={"tril": Spec(params=("diagonal",), forms="mfi")}, saves=""),
    "triu": Row(names={"triu": Spec(params=("diagonal",), forms="mfi")}, saves=""),
    # reached through Tensor's shape methods and functions (_shape.py, _functional.py)
    "flatten": Row(grad="ViewBackward0", saves="", view=True),
    "broadcast_to": Row(grad="ExpandBackward0", saves="", view=True),
    "chunk": Row(grad="SplitBackward0", saves="", view=True),
    "split": Row(saves="", view=True),
    "permute": Row(saves="", view=True),
    **{op: Row(saves="") for op in ("repeat", "cat", "stack")},
    "pad": Row(grad="ConstantPadNdBackward0", saves=""),  # nn.functional.pad
    # Tensor.__getitem__ (_shape.py); a view where no tensor is among the operands
    "index": Row(view=True, namer=_index_name,  # saves the (first) index tensor
                 saves={"IndexBackward0": "b"}),
    # --- indexing -----------------------------------------------------------------------
    "index_select": Row(names={"index_select": Spec(nin=1, params=("dim", "index"),
                                                    adapt=_move("index"))}, saves="b"),
    "gather": Row(names={"gather": Spec(nin=1, params=("dim", "index"),
                                        adapt=_move("index"))}, saves="ab"),
    "scatter_add": Row(names={"scatter_add": Spec(nin=1, params=("dim", "index", "src"),
                                                  forms="mfi",
                                                  adapt=_move("index", "src"))}, saves="b"),
    "scatter": Row(names={"scatter": Spec(nin=1, params=("dim", "index", "src"), forms="mfi",
                                          adapt=_scatter)}, namer=_scatter_name,
                    saves={"ScatterBackward0": "b", "ScatterBackward1": "b"}),
    "index_add": Row(names={"index_add": Spec(nin=1, params=("dim", "index", "source"),
                                              forms="mfi", adapt=_move("index", "source"))},
                      saves="b"),
    "arange": Row(),  # remotegrad.arange (_factories)
    # --- nn.functional (client/nn/functional.py) ------------------------------------------
    "linear": Row(grad="AddmmBackward0", saves="AB"),  # (without a bias: matmul's nodes)
    "layer_norm": Row(grad="NativeLayerNormBackward0", saves="abc"),
    "dropout": Row(grad="MulBackward0", saves="AB"),
    "mse_loss": Row(saves="ab"),
    "cross_entropy": Row(grad="NllLossBackward0", saves=_NLL_SAVES),
    "conv2d": Row(grad="ConvolutionBackward0", saves="ab"),
    "max_pool2d": Row(grad="MaxPool2DWithIndicesBackward0", saves="a"),
    "avg_pool2d": Row(grad="AvgPool2DBackward0", saves="a"),
    "leaky_relu": Row(saves="a"), "elu": Row(saves="a"), "gelu": Row(saves="a"),
    "silu": Row(saves="a"), "softplus": Row(saves="a"),
    # activations (catalog); selu is PyTorch's elu with its constants (EluBackward0)
    "selu": Row(names={"selu": Spec(forms="f")}, grad="EluBackward0", saves="a"),
    "celu": Row(names={"celu": Spec(params=("alpha",), forms="f")}, saves="a"),
    **{op: Row(saves="a") for op in ("mish", "hardswish", "hardsigmoid")},
    "logsigmoid": Row(grad="LogSigmoidBackward0", saves="a"),
    "embedding": Row(saves="a"), "nll_loss": Row(saves=_NLL_SAVES),  # indices
    "binary_cross_entropy": Row(saves="abc"),
    "binary_cross_entropy_with_logits": Row(saves="abcd"),  # input, target, weights
    "l1_loss": Row(),  # PyTorch's sub, abs, mean: abs saves the difference, not an operand
    # --- internal: the client's plumbing and the derivative rules' own ops -----------------
    **dict.fromkeys(("leaf", "const", "full", "detach", "grad", "index_backward",
                     "max_pool2d_select", "check_targets", "check_unit_interval",
                     "overwrite", "replace", "bce_input_grad", "prod_others",
                     "prod_others_hvp"), _INTERNAL),
    "cast": Row(internal=True, grad="ToCopyBackward0", saves=""),
    "reshape": Row(internal=True, grad="ViewBackward0", saves="", view=True),
    "expand": Row(internal=True, grad="ExpandBackward0", saves="", view=True),
    "sum_to": Row(internal=True, grad="SumToSizeBackward0", namer=_sum_to_name,
                  saves={"SumToSizeBackward0": ""}),
    "lerp_kernel": Row(internal=True, grad="LerpBackward1", saves="c"),  # the weight
    "addcdiv_kernel": Row(internal=True, grad="AddcdivBackward0"),  # saves NODES says
    "addcmul_kernel": Row(internal=True, grad="AddcmulBackward0"),  # saves NODES says
    "cross_entropy_rows": Row(internal=True, grad="NllLossBackward0"),
    "cross_entropy_rows_backward": Row(internal=True, grad="NllLossBackwardBackward0"),
    "conv2d_input_grad": Row(internal=True, grad="ConvolutionBackwardBackward0"),
    "conv2d_weight_grad": Row(internal=True, grad="ConvolutionBackwardBackward0"),
    "max_pool2d_backward": Row(internal=True,
                               grad="MaxPool2DWithIndicesBackwardBackward0"),
    "pad_backward": Row(internal=True, grad="ReflectionPad1DBackwardBackward0"),
}

# PyTorch nodes that the client's composites record over other ops (their names are
# written there), with what each saves: "" nothing, else SAVES codes; None: tensors that are
# not the recorded op's operands (addcmul's tensor1 and tensor2, sort's indices...), so not
# modelled (a second backward without retain_graph fails, as PyTorch's; no in-place check).
NODES: dict[str, str | None] = {
    **dict.fromkeys((
        "AccumulateGrad", "AddBackward1", "SubBackward1", "RsubBackward0", "RsubBackward1",
        "ViewBackward0", "ReshapeAliasBackward0", "TBackward0", "TBackward1", "SelectBackward0",
        "AliasBackward0", "SplitWithSizesBackward0", "UnbindBackward0", "SqueezeBackward1",
        "SqueezeBackward2", "DetachBackward0", "DiagonalBackward0", "CopyBackwards",
        "FillBackward2", "FillBackward3", "ZeroBackward0", "LerpBackward0",
        "AsStridedBackward0",  # a view refreshed after its base changed (_views.py)
        # in-place view changes (client/_shape.py): transpose_, unsqueeze_, squeeze_()
        # and squeeze_(dims)
        "TransposeBackward1", "UnsqueezeBackward1", "SqueezeBackward3", "SqueezeBackward5",
        # _composites' (composed on the client): PyTorch's nodes save no tensor
        "RollBackward0", "TraceBackward0", "DiagEmbedBackward0", "FracBackward0",
        "DiagonalBackward0_copy"), ""),
    **dict.fromkeys((
        "AddcdivBackward0", "AddcmulBackward0", "ClampBackward0", "DivBackward1",
        "HardtanhBackward0", "HuberLossBackward0", "SmoothL1LossBackward0",
        "KthvalueBackward0", "MedianBackward0", "MedianBackward1", "SortBackward0",
        "TopkBackward0", "MaskedFillBackward0", "NativeBatchNormBackward0",
        "ScatterReduceBackward0",
        "IndexPutBackward0",  # x[idx] = v (_shape.py): PyTorch's node saves the indices
        # _composites': PyTorch's nodes save their inputs (mask, self, other, result)
        "MaskedSelectBackward0", "SgnBackward0", "NanToNumBackward0",
        "LinalgCrossBackward0", "CumprodBackward0", "FmaxBackward0", "FminBackward0"), None),
    # _special_fns' var_mean/std_mean (one node of each name per output here): the input
    "VarMeanBackward0": "a", "StdMeanBackward0": "a",
    # the in-place activations (nn.functional's inplace=True, torch.selu_/celu_): PyTorch's
    # derivatives of the result
    "EluBackward1": "r", "CeluBackward1": "r", "LeakyReluBackward1": "r",
}


def _camel(op: str) -> str:
    return "".join(part.capitalize() for part in op.split("_"))


def _row(op: str) -> Row:
    return ROWS.get(op) or _INTERNAL


def static_name(op: str) -> str:
    """The grad_fn name of `op` when no operands are looked at (what apply records
    when its caller names none)."""
    return _row(op).grad or f"{_camel(op)}Backward0"


def grad_name(op: str, operands: list, attrs: dict) -> str:
    """PyTorch's grad_fn name for `op` recorded over `operands` (tensors, or Python numbers
    where the op takes one)."""
    namer = _row(op).namer
    if namer is None:
        return static_name(op)
    return namer if isinstance(namer, str) else namer(operands, attrs)


def internal(op: str) -> bool:
    """Ops the engine's derivative rules use, not PyTorch functions of their own."""
    return _row(op).internal or op.endswith(("_backward", "_grad"))


def _saves() -> dict[str, str]:
    """grad_fn name -> its SAVES codes, from the rows and NODES; one name, one code."""
    out = {name: code for name, code in NODES.items() if code is not None}
    for op, row in ROWS.items():
        codes = row.saves if isinstance(row.saves, dict) else (
            {} if row.saves is None else {static_name(op): row.saves})
        for name, code in codes.items():
            if out.setdefault(name, code) != code:
                raise ValueError(f"{op}: {name} saves {code!r}, elsewhere {out[name]!r}")
            if NODES.get(name, "") is None:
                raise ValueError(f"{op}: {name} saves {code!r}, NODES says it is not modelled")
    return out


def _table() -> dict[str, Spec]:
    """PyTorch name -> its Spec (op and default grad_fn name filled in from the row)."""
    out = {}
    for op, row in ROWS.items():
        for name, spec in row.names.items():
            if name in out:
                raise ValueError(f"PyTorch name {name!r} in two rows")
            out[name] = replace(spec, op=op, grad=spec.grad or row.namer)
    return out


TABLE: dict[str, Spec] = _table()
# Ops whose PyTorch counterpart returns a view of its input (index: basic indexing, no
# tensor among the operands).
VIEWS = frozenset(op for op, row in ROWS.items() if row.view)
_CODES = _saves()
# Which tensors PyTorch's node saves for backward (so an in-place change of one of them
# before the backward fails): a/b/c/d the first/second/third/fourth operand always, A/B the
# first/second only when the other operand requires grad, S the second only when it
# requires grad itself (fmod's rule for it reads both), r the result. Nodes not listed are
# not checked.
SAVES: dict[str, str] = {name: code for name, code in _CODES.items() if code}
# PyTorch nodes whose backward needs no saved tensor (only sizes, dims or scalars): a
# second backward through them succeeds even after the graph was freed.
NO_SAVED_TENSORS = frozenset(name for name, code in _CODES.items() if not code)
