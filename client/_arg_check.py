"""PyTorch's argument parser refusals for the table's functions and methods: which tensor
inputs take no Python number, which parameters are required, and its messages (a
TypeError: "sin(): argument 'input' (position 1) must be Tensor, not int", "eq() received
an invalid combination of arguments - got (int, Tensor), ...", 'cumsum() missing 1
required positional arguments: "dim"'), so that a call PyTorch refuses is not computed.

What PyTorch accepts (checked against 2.13): a number as the first input of add, sub, mul,
div and their aliases (its parser makes numbers tensors for these), of pow and remainder
(a `Number self` overload) when the second is a tensor, and as the second input of every
binary op that has a `Number other` overload; maximum, minimum, logical_*, matmul, mm,
bmm, dot, outer/ger take tensors only.
"""

from __future__ import annotations

import builtins
import numbers
import operator
from typing import Any

_NUMBER = (builtins.bool, builtins.int, builtins.float, builtins.complex)

# Its parser turns a number into a tensor here (two numbers: a tensor result).
NUMBERS_AS_TENSORS = frozenset({"add", "sub", "subtract", "mul", "multiply", "div", "divide",
                                "true_divide", "floor_divide"})
# A number may be the first input when the second is a tensor (`Number self` overloads).
NUMBER_SELF = frozenset({"pow", "remainder"})
# No `Number other` overload: every input must be a tensor.
TENSORS_ONLY = frozenset({"maximum", "minimum", "logical_and", "logical_or", "logical_xor",
                          "matmul", "mm", "bmm", "dot", "outer", "ger", "atan2", "arctan2",
                          "hypot"})
_TWO = (" * (Tensor input, Tensor other, *, Tensor out = None)\n"
        " * (Tensor input, Number other, *, Tensor out = None)\n")
_COMPARISONS = ("eq", "ne", "not_equal", "lt", "less", "le", "less_equal", "gt", "greater",
                "ge", "greater_equal")
# Names with several overloads: PyTorch's "invalid combination" message (with its list of
# signatures where that list does not depend on the arguments; else its first line).
OVERLOADS: dict[str, str] = {
    **dict.fromkeys(_COMPARISONS, _TWO), "fmod": _TWO,
    "pow": (" * (Tensor input, Tensor exponent, *, Tensor out = None)\n"
            " * (Number self, Tensor exponent, *, Tensor out = None)\n"
            " * (Tensor input, Number exponent, *, Tensor out = None)\n"),
    **dict.fromkeys(("remainder", "where", "clamp", "clip", "all", "any", "std", "var",
                     "narrow", "scatter"), ""),
}
# PyTorch's required positional parameters after the inputs (its names).
REQUIRED: dict[str, tuple[str, ...]] = {
    "cumsum": ("dim",), "logsumexp": ("dim",), "flip": ("dims",), "unsqueeze": ("dim",),
    "transpose": ("dim0", "dim1"), "swapdims": ("dim0", "dim1"),
    "swapaxes": ("axis0", "axis1"), "softmax": ("dim",), "log_softmax": ("dim",),
    "gather": ("dim", "index"), "index_select": ("dim", "index"),
    "scatter_add": ("dim", "index", "src"), "narrow": ("dim", "start", "length"),
    "scatter": ("dim", "index", "src"), "index_add": ("dim", "index", "source"),
}
# Method-only requirements (torch.polygamma takes n first: _special_fns).
METHOD_REQUIRED = {**REQUIRED, "polygamma": ("n",)}
# Names bind must see (not the fast path of _ops.call): a method check applies.
CHECKED = frozenset(TENSORS_ONLY | set(METHOD_REQUIRED))


def _type(x: Any) -> str:
    return "Tensor" if hasattr(x, "_node") else type(x).__name__


def _got(args: tuple, kwargs: dict) -> str:
    """The arguments as PyTorch's message lists them: its keywords last given first."""
    return ", ".join([_type(a) for a in args]
                     + [f"{k}={_type(v)}" for k, v in reversed(kwargs.items())])


def _invalid(name: str, args: tuple, kwargs: dict, signatures: str) -> TypeError:
    return TypeError(f"{name}() received an invalid combination of arguments - got "
                     f"({_got(args, kwargs)}), but expected one of:\n{signatures}")


def _not_tensor(name: str, param: str, position: int, x: Any) -> TypeError:
    return TypeError(f"{name}(): argument '{param}' (position {position}) must be Tensor, "
                     f"not {type(x).__name__}")


# A required parameter that another keyword stands for: dim's NumPy alias, scatter's value
_ALTERNATIVE = {"dim": "axis", "src": "value"}


def missing(name: str, required: tuple[str, ...], given: tuple, kwargs: dict,
            got: tuple) -> None:
    """PyTorch's message (its plural as it writes it: "1 ... arguments"); `given`: the
    arguments after the inputs, `got` those its message lists."""
    names = [n for n in required[len(given):]
             if n not in kwargs and _ALTERNATIVE.get(n) not in kwargs]
    if names and name in OVERLOADS:
        raise _invalid(name, got, kwargs, OVERLOADS[name])
    if names:
        plural = "s" if len(names) == 1 else ""
        quoted = ", ".join(f'"{n}"' for n in names)
        raise TypeError(f"{name}() missing {len(names)} required positional argument{plural}: "
                        f"{quoted}")


def refused(name: str, nin: int, args: tuple) -> list[int]:
    """The positions of `args` (a function's) where PyTorch takes no number (a
    tensors-only op: nothing but a tensor)."""
    if name in TENSORS_ONLY:
        return [i for i in range(min(nin, len(args))) if not hasattr(args[i], "_node")]
    numbers = [i for i in range(min(nin, len(args))) if isinstance(args[i], _NUMBER)]
    if not numbers or name in NUMBERS_AS_TENSORS:
        return []
    if name in NUMBER_SELF:
        return numbers if len(numbers) == nin else []
    return [i for i in numbers if i == 0]


def check_function(name: str, inputs: tuple[str, ...], nin: int, args: tuple,
                   kwargs: dict) -> tuple:
    """torch.<name>(*args, **kwargs): PyTorch's refusal, else the args to call with (two
    numbers to an op that makes them tensors: the first one a tensor, as its parser's)."""
    bad = refused(name, nin, args)
    if bad and name == "norm":  # a Python function there, which reads input.layout first
        raise AttributeError(f"'{type(args[0]).__name__}' object has no attribute 'layout'")
    if bad:
        if name in OVERLOADS:
            raise _invalid(name, args, kwargs, OVERLOADS[name])
        raise _not_tensor(name, inputs[bad[0]], bad[0] + 1, args[bad[0]])
    if name in REQUIRED:
        missing(name, REQUIRED[name], args[nin:], kwargs, args)
    if (name in NUMBERS_AS_TENSORS and len(args) >= 2 and isinstance(args[0], _NUMBER)
            and isinstance(args[1], _NUMBER)):
        return (_as_tensor(args[0]), *args[1:])
    return args


def _as_tensor(x):
    """A number as PyTorch's parser makes it a tensor: int64, bool, or the default dtype."""
    from ._creation import tensor  # (_creation imports the ops' modules)
    from ._default_dtype import get_default_dtype
    from ._dtypes import bool as bool_, int64
    dtype = (bool_ if isinstance(x, builtins.bool) else int64 if isinstance(x, builtins.int)
             else get_default_dtype())
    return tensor(x, dtype=dtype)


def check_method(name: str, inputs: tuple[str, ...], nin: int, args: tuple,
                 kwargs: dict) -> None:
    """Tensor.<name>(*args[1:]) (args[0] is self): the other inputs of a tensors-only op
    (positions counted after self), and the required parameters."""
    if name in TENSORS_ONLY:
        for i in range(1, min(nin, len(args))):
            if not hasattr(args[i], "_node"):
                raise _not_tensor(name, inputs[i], i, args[i])
    if name in METHOD_REQUIRED:
        missing(name, METHOD_REQUIRED[name], args[nin:], kwargs, args[1:])


def guard(name: str, fn, inputs: tuple[str, ...], nin: int):
    """torch.<name> with PyTorch's checks before `fn`."""
    def function(*args, **kwargs):
        return fn(*check_function(name, inputs, nin, args, kwargs), **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = getattr(fn, "__doc__", None)
    return function


# --- functions outside the table (composites, shape and selection functions) ---------------
# Their first argument, for PyTorch's parser, is a Tensor: "single" names it whatever
# follows, "one" names it for a lone argument (several overloads take more), "invalid" is
# always its "invalid combination" message (checked against PyTorch 2.13).
FIRST_TENSOR: dict[str, str] = {
    **dict.fromkeys((
        "broadcast_to", "chunk", "cross", "cumprod", "diag", "diagonal", "diff", "flatten",
        "fmax", "fmin", "kron", "kthvalue", "masked_select", "median", "nan_to_num", "permute",
        "reshape", "roll", "scatter_reduce", "select", "take_along_dim", "tile", "topk",
        "unbind", "unflatten", "unique", "clone", "detach", "frac", "is_floating_point",
        "nonzero", "numel", "sgn", "t", "trace"), "single"),
    **dict.fromkeys(("argsort", "count_nonzero", "max", "min", "sort"), "one"),
    **dict.fromkeys(("addmm", "clamp_max", "clamp_min", "masked_fill", "moveaxis", "movedim",
                     "searchsorted", "std_mean", "var_mean", "atleast_1d", "atleast_2d",
                     "atleast_3d", "bucketize"), "invalid"),
}
_PARSER_NAMES = {"unique": "_unique2"}  # the native function PyTorch's Python one calls
# A tuple (or list) of tensors first.
TENSOR_LISTS = frozenset({"cat", "concat", "concatenate", "stack", "hstack", "vstack",
                          "dstack", "column_stack"})
_OTHER_TENSOR = frozenset({"fmax", "fmin"})  # no Number overload for `other` either
# One positional parameter: PyTorch counts the arguments before it looks at their types.
ONE_ARGUMENT = frozenset({"clone", "detach", "frac", "is_floating_point", "nonzero", "numel",
                          "sgn", "t", "trace", "hstack", "vstack", "dstack", "column_stack"})
_VARARGS = frozenset({"atleast_1d", "atleast_2d", "atleast_3d"})  # tensors as *args too


# The second positional argument's type, where PyTorch's parser refuses another (its
# message: the parameter, its position or none, the type it names, the accepted types).
_SECOND: dict[str, tuple[str, str, str, tuple]] = {
    "tile": ("dims", " (position 2)", "tuple of ints", (tuple, list)),
    "unique": ("sorted", "", "bool", (builtins.bool,)),
}


_FLOATS = ("nan", "posinf", "neginf")  # nan_to_num's `float` parameters


def float_arg(name: str, param: str, value: Any, position: int | None) -> Any:
    """A `float` parameter as PyTorch's parser reads it: a real number or None as it is, a
    0-d tensor that requires no grad as its value; else its TypeError (`position`: None
    for a keyword, which its message does not place)."""
    if value is None or isinstance(value, numbers.Real):
        return value
    if hasattr(value, "_node") and value.dim() == 0 and not value.requires_grad:
        return value.item()
    where = f" (position {position})" if position is not None else ""
    raise TypeError(f"{name}(): argument '{param}'{where} must be float, not {_type(value)}")


def int_arg(name: str, param: str, value: Any, position: int | None) -> int:
    """An `int` parameter as PyTorch's parser reads it: an integer (a NumPy one too:
    whatever has __index__) but not a bool; else its TypeError, as float_arg's."""
    if not isinstance(value, builtins.bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    where = f" (position {position})" if position is not None else ""
    raise TypeError(f"{name}(): argument '{param}'{where} must be int, not {_type(value)}")


FLATTEN_DIMS = ("start_dim", "end_dim")
# Functions' typed parameters after the input: their names and their reader.
_TYPED = {"nan_to_num": (_FLOATS, float_arg), "flatten": (FLATTEN_DIMS, int_arg)}


def _check_typed(name: str, args: tuple, kwargs: dict) -> None:
    params, read = _TYPED[name]
    for i, param in enumerate(params, start=1):
        if i < len(args):
            read(name, param, args[i], i + 1)
        elif param in kwargs:
            read(name, param, kwargs[param], None)


def _check_second(name: str, args: tuple, kwargs: dict) -> None:
    param, where, what, types = _SECOND[name]
    if len(args) > 1:
        value = args[1]
    elif param in kwargs:  # a keyword: no position in the message
        value, where = kwargs[param], ""
    else:
        return
    if not isinstance(value, types):
        raise TypeError(f"{_PARSER_NAMES.get(name, name)}(): argument '{param}'{where} must "
                        f"be {what}, not {_type(value)}")


def check_first(name: str, args: tuple, kwargs: dict) -> None:
    """PyTorch's refusal of a number (or a lone tensor where it wants a sequence) first."""
    if name in ONE_ARGUMENT and len(args) > 1:
        raise TypeError(f"{name}() takes 1 positional argument but {len(args)} were given")
    if name in _VARARGS and len(args) > 1:
        bad = next((i for i, a in enumerate(args) if not hasattr(a, "_node")), None)
        if bad is not None:
            raise TypeError(f"expected Tensor as element {bad} in argument 0, but got "
                            f"{type(args[bad]).__name__}")
        return
    if name == "bucketize" and len(args) > 1:
        if hasattr(args[1], "_node"):
            return  # bucketize(Number self, Tensor boundaries) is an overload
        raise _invalid(name, args, kwargs, "")  # boundaries: a tensor in every overload
    if name in TENSOR_LISTS:
        if args and not isinstance(args[0], (tuple, list)):
            raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of "
                            f"Tensors, not {_type(args[0])}")
        return
    kind = FIRST_TENSOR[name]
    if args and isinstance(args[0], _NUMBER):
        if kind == "single" or (kind == "one" and len(args) == 1 and not kwargs):
            raise _not_tensor(_PARSER_NAMES.get(name, name), "input", 1, args[0])
        raise _invalid(name, args, kwargs, "")
    if name in _OTHER_TENSOR and len(args) > 1 and isinstance(args[1], _NUMBER):
        raise _not_tensor(name, "other", 2, args[1])
    if name in _SECOND:
        _check_second(name, args, kwargs)
    if name in _TYPED:
        _check_typed(name, args, kwargs)


def guard_first(name: str, fn):
    """torch.<name> (outside the table) with check_first before `fn`."""
    def function(*args, **kwargs):
        check_first(name, args, kwargs)
        return fn(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = getattr(fn, "__doc__", None)
    return function
