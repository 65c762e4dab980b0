"""PyTorch's module-level in-place functions (torch.sin_(x), torch.clamp_(x, 0, 1),
torch.selu_(x)...): the Tensor method of that name, or nn.functional's inplace=True form
for selu_ and celu_ (no Tensor method there either: the op, assigned), with PyTorch's refusal of a
non-tensor input."""

from __future__ import annotations

from typing import Any

from ._tensor_base import apply

# The torch.<name>_ functions of PyTorch 2.13 whose out-of-place op the client has.
METHODS = (
    "abs_", "acos_", "acosh_", "arccosh_", "arcsinh_", "arctanh_", "asin_", "asinh_",
    "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_", "clamp_min_", "clip_", "cos_",
    "cosh_", "deg2rad_", "detach_", "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fix_",
    "floor_", "frac_", "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_",
    "negative_", "rad2deg_", "reciprocal_", "relu_", "round_", "rsqrt_", "sigmoid_", "sin_",
    "sinc_", "sinh_", "sqrt_", "square_", "tan_", "tanh_", "trunc_")


def _with_input(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """input= given by keyword (PyTorch's parser takes it so) as the first argument."""
    if not args and "input" in kwargs:
        kwargs = dict(kwargs)
        return (kwargs.pop("input"),), kwargs
    return args, kwargs


def _input(name: str, args: tuple) -> Any:
    if not args:
        raise TypeError(f'{name}() missing 1 required positional arguments: "input"')
    if not hasattr(args[0], "_node"):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(args[0]).__name__}")
    return args[0]


def _method(name: str):
    bases = tuple(f"{name[:-1]}() {words} " for words in ("takes", "got an unexpected"))

    def function(*args, **kwargs):
        args, kwargs = _with_input(args, kwargs)
        try:
            return getattr(_input(name, args), name)(*args[1:], **kwargs)
        except TypeError as e:  # the arity and keyword messages name the function: sin_()
            if str(e).startswith(bases):
                raise TypeError(f"{name}{str(e)[len(name) - 1:]}") from None
            raise
    function.__name__ = function.__qualname__ = name
    return function


def _assigned(input, out):
    """nn.functional's inplace=True (its in-place checks first), written here: importing
    nn.functional would close an import circle through _tensor_methods."""
    input._check_inplace()
    return input._assign(out)


def selu_(*args, **kwargs):
    args, kwargs = _with_input(args, kwargs)
    for key in kwargs:
        raise TypeError(f"selu_() got an unexpected keyword argument '{key}'")
    if len(args) > 1:
        raise TypeError(f"selu_() takes 1 positional argument but {len(args)} were given")
    input = _input("selu_", args)
    # (PyTorch's in-place forms have derivatives of their own: ...Backward1)
    return _assigned(input, apply("selu", input, torch_name="EluBackward1"))


def celu_(*args, **kwargs):
    """torch.celu_(input, alpha=1.0), with PyTorch's refusal of other arguments."""
    args, kwargs = _with_input(args, kwargs)
    if len(args) > 2:
        raise TypeError(f"celu_() takes from 1 to 2 positional arguments but {len(args)} "
                        "were given")
    for key in kwargs:
        if key != "alpha":
            raise TypeError(f"celu_() got an unexpected keyword argument '{key}'")
        if len(args) > 1:
            raise TypeError("celu_() got multiple values for argument 'alpha'")
    input = _input("celu_", args)
    alpha = args[1] if len(args) > 1 else kwargs.get("alpha", 1.0)
    return _assigned(input, apply("celu", input, alpha=float(alpha),
                                  torch_name="CeluBackward1"))


FUNCTIONS: dict[str, Any] = {name: _method(name) for name in METHODS}
FUNCTIONS.update(selu_=selu_, celu_=celu_)
