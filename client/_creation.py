"""Creation functions. Data made here lives on the client as a leaf and travels once.

Random numbers come from the client's generator (`manual_seed` seeds it): a graph stays
pure, so the same request always gives the same answer on any worker.
"""

from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING

import numpy as np

from remotegrad.proto.catalog._types import promote_types

from . import _dtypes
from ._node import dtype_name, leaf
from ._tensor_base import TensorBase, new
from ._to import check_device

if TYPE_CHECKING:
    from ._tensor import Tensor

_rng = np.random.default_rng()


class Generator:
    """What manual_seed returns (torch.Generator's seeding surface)."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self.rng = np.random.default_rng(seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = seed
        self.rng = np.random.default_rng(seed)
        return self

    def initial_seed(self) -> int | None:
        return self._seed


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the client's random generator (rand, randn, randint, dropout masks, init)."""
    return default_generator.manual_seed(builtins.int(seed))


def seed() -> int:
    s = builtins.int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def initial_seed() -> int | None:
    return default_generator.initial_seed()


def rng(generator: Generator | None = None) -> np.random.Generator:
    return (generator or default_generator).rng


def _size(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(builtins.int(s) for s in size)


def _make(array: np.ndarray, dtype, requires_grad: bool) -> Tensor:
    name = _dtypes.resolve(dtype)
    if name is not None and dtype_name(array.dtype) != name:
        array = array.astype(name)
    if requires_grad and dtype_name(array.dtype) not in ("float16", "float32", "float64"):
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    t = new(leaf(array))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(array: np.ndarray) -> str:
    """PyTorch's inference from Python data: floats → default float, ints → int64."""
    kind = array.dtype.kind
    if kind == "f":
        return _dtypes.get_default_dtype().name
    if kind in "iu":
        return "int64"
    if kind == "b":
        return "bool"
    raise TypeError(f"can't convert data of dtype {array.dtype} to a tensor")


_PLAIN = frozenset((bool, int, float))


def _data_dtype(data) -> str | None:
    """The dtype PyTorch infers for `data`: each element's own type (a Python bool, int
    or float: bool, int64, the default float; a numpy scalar, an array or a tensor: its
    dtype), promoted over the whole nesting; None for an empty sequence."""
    if isinstance(data, (list, tuple)):
        kinds = set(map(type, data))
        if kinds <= _PLAIN:  # Python numbers only (the usual list): no walk per element
            return (_dtypes.get_default_dtype().name if float in kinds else
                    "int64" if int in kinds else "bool" if kinds else None)
        found = None
        for d in data:
            found = promote_types(found, _data_dtype(d))
        return found
    if isinstance(data, TensorBase):
        return data.dtype.name
    if isinstance(data, (np.ndarray, np.generic)):
        name = dtype_name(data.dtype)
        return name if name in _dtypes.NAMES else _infer_dtype(np.asarray(data))
    if isinstance(data, bool):
        return "bool"
    if isinstance(data, int):
        return "int64"
    if isinstance(data, float):
        return _dtypes.get_default_dtype().name
    return None  # not a number: np.asarray's dtype tells (and may refuse)


def _gather(data):
    """Nested lists may hold tensors (torch.tensor([t1, t2]))."""
    if isinstance(data, TensorBase):
        return data.detach()._value()
    if isinstance(data, (list, tuple)):
        return [_gather(d) for d in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new leaf holding a copy of `data` (nested lists, numbers, arrays or tensors)."""
    check_device(device)
    was_array = isinstance(data, (np.ndarray, TensorBase))
    array = np.asarray(_gather(data))
    if not was_array and array.dtype.kind not in "fiub":
        raise TypeError(f"Could not infer dtype of {type(data).__name__}")
    if not was_array:
        array = array.astype(_dtypes.resolve(dtype) or _data_dtype(data)
                             or _infer_dtype(array))
    elif dtype_name(array.dtype) not in _dtypes.NAMES:
        array = array.astype(_infer_dtype(array))
    return _make(np.array(array), dtype, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    check_device(device)
    if isinstance(data, TensorBase):
        return data if dtype is None else data.to(dtype)
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor over a numpy array. Unlike PyTorch it does not share memory: the value is
    frozen when the tensor is made (a graph's leaves never change under it)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    if array.dtype.name not in _dtypes.NAMES:
        raise TypeError(f"can't convert np.ndarray of type numpy.{array.dtype.name}. The only "
                        "supported types are: float64, float32, float16, int64, int32, int16, "
                        "int8, uint8, and bool.")
    return new(leaf(np.array(array)))


def _default(dtype) -> str:
    return _dtypes.resolve(dtype) or _dtypes.get_default_dtype().name


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None,
          layout=None) -> Tensor:
    check_device(device)
    return _make(np.zeros(_size(size), _default(dtype)), None, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None,
         layout=None) -> Tensor:
    check_device(device)
    return _make(np.ones(_size(size), _default(dtype)), None, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    check_device(device)
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    if isinstance(fill_value, TensorBase):
        fill_value = fill_value.item()
    if dtype is None:
        dtype = ("bool" if isinstance(fill_value, builtins.bool) else
                 "int64" if isinstance(fill_value, builtins.int) else None)
    return _make(np.full(_size((size,)), fill_value, _default(dtype)), None, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _make(np.eye(n, n if m is None else m, dtype=_default(dtype)), None, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    check_device(device)
    if end is None:
        start, end = 0, start
    values = [_num(v) for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    integral = all(isinstance(v, builtins.int) for v in values)
    name = _dtypes.resolve(dtype) or ("int64" if integral else _default(None))
    if name in ("int64", "int32", "int16", "int8", "uint8"):
        values = [builtins.int(v) for v in values]  # PyTorch casts all three first
        if values[2] == 0:
            raise ValueError("step must be nonzero")
    count = max(0, math.ceil((values[1] - values[0]) / values[2]))
    if name in ("int64", "int32", "int16", "int8", "uint8"):
        array = values[0] + np.arange(count, dtype=np.int64) * values[2]
    else:  # start + i * step with one rounding, as PyTorch's fused multiply-add
        wide = np.longdouble
        array = wide(values[0]) + wide(values[2]) * np.arange(count).astype(wide)
    return _make(array.astype(name), None, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    check_device(device)
    n, name = builtins.int(steps), _default(dtype)
    lo, hi = _num(start), _num(end)
    if name in ("float32", "float16"):  # PyTorch computes in the output's precision
        f = np.float32
        lo, hi = f(lo), f(hi)
        step = f(f(hi - lo) / f(n - 1)) if n > 1 else f(0)
        exact, lo, hi, step = np.float64, np.float64(lo), np.float64(hi), np.float64(step)
    else:
        step = np.float64((hi - lo) / (n - 1) if n > 1 else 0.0)
        exact = np.longdouble
    # The first half counts up from the start, the second down from the end, each value
    # with one rounding (PyTorch uses fused multiply-adds; a wider type stands in here).
    i = np.arange(n, dtype=exact)
    wide = exact(step)
    array = np.where(i < n // 2, exact(lo) + wide * i, exact(hi) - wide * (n - 1 - i))
    if n == 1:
        array = np.array([lo])
    return _make(array.astype(name), None, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    check_device(device)
    array = np.logspace(_num(start), _num(end), builtins.int(steps), base=base)
    return _make(array.astype(_default(dtype)), None, requires_grad)


def _num(v):
    return v.item() if isinstance(v, TensorBase) else v


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    array = rng(generator).standard_normal(_size(size))
    return _make(array.astype(_default(dtype)), None, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    array = rng(generator).random(_size(size))
    return _make(array.astype(_default(dtype)), None, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    check_device(device)
    if size is None:
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    array = rng(generator).integers(low, high, _size((size,)))
    return _make(array.astype(_dtypes.resolve(dtype) or "int64"), None, requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    check_device(device)
    array = rng(generator).permutation(builtins.int(n))
    return _make(array.astype(_dtypes.resolve(dtype) or "int64"), None, requires_grad)


def normal(mean: float = 0.0, std: float = 1.0, size=None, *, generator=None,
           dtype=None, requires_grad: bool = False) -> Tensor:
    array = rng(generator).normal(mean, std, _size((size,)))
    return _make(array.astype(_default(dtype)), None, requires_grad)


# --- *_like ---------------------------------------------------------------------------------
def _like(t: Tensor, dtype) -> tuple[tuple[int, ...], object]:
    return tuple(t.shape), dtype or t.dtype


def zeros_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    check_device(device)
    shape, dt = _like(input, dtype)
    return zeros(shape, dtype=dt, requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    check_device(device)
    shape, dt = _like(input, dtype)
    return ones(shape, dtype=dt, requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    check_device(device)
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None,
              requires_grad: bool = False, memory_format=None) -> Tensor:
    check_device(device)
    shape, dt = _like(input, dtype)
    return full(shape, fill_value, dtype=dt, requires_grad=requires_grad)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    check_device(device)
    shape, dt = _like(input, dtype)
    return rand(shape, dtype=dt, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    check_device(device)
    shape, dt = _like(input, dtype)
    return randn(shape, dtype=dt, requires_grad=requires_grad)


def randint_like(input: Tensor, low, high=None, *, dtype=None, device=None,
                 requires_grad: bool = False, memory_format=None) -> Tensor:
    check_device(device)
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype,
                   requires_grad=requires_grad)


# --- as Tensor methods ----------------------------------------------------------------------
def _fill_random(tensor: Tensor, array: np.ndarray) -> Tensor:
    """The tensor's new value, drawn here (no autograd history, as under no_grad); what
    nn.init's uniform_/normal_ do."""
    tensor._set_node(leaf(np.asarray(array, dtype=tensor._node.meta.dtype)))
    return tensor


def fill_uniform(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    return _fill_random(tensor, rng(generator).uniform(a, b, tuple(tensor.shape)))


def fill_normal(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    return _fill_random(tensor, rng(generator).normal(mean, std, tuple(tensor.shape)))


class CreationMethods:
    """Tensor methods that make new data: new_* and the random in-place fills."""

    __slots__ = ()

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
        return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return self.new_zeros(*size, dtype=dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None,
                 requires_grad=False) -> Tensor:
        return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def uniform_(self, *args, generator=None, **kwargs) -> Tensor:
        return fill_uniform(self, *args, generator=generator, **kwargs)

    def normal_(self, *args, generator=None, **kwargs) -> Tensor:
        return fill_normal(self, *args, generator=generator, **kwargs)


__all__ = [
    "Generator", "arange", "as_tensor", "default_generator", "empty", "empty_like", "eye",
    "from_numpy", "full", "full_like", "initial_seed", "linspace", "logspace", "manual_seed",
    "normal", "ones", "ones_like", "rand", "rand_like", "randint", "randint_like", "randn",
    "randn_like", "randperm", "seed", "tensor", "zeros", "zeros_like",
]
