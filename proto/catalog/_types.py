"""Static facts about a tensor (`Meta`), dtypes, and the promotion and broadcasting rules.

These are the rules the SDK runs at the line that builds a node (so errors surface there,
with PyTorch's wording) and the gateway runs again to validate a graph from the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
FLOATING = frozenset({"float16", "float32", "float64"})
INTEGRAL = frozenset({"uint8", "int8", "int16", "int32", "int64"})
DEFAULT_FLOAT = "float32"
ITEMSIZE = {"bool": 1, "uint8": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8,
            "float16": 2, "float32": 4, "float64": 8}


class OpError(ValueError):
    """A graph node that cannot be built: bad shapes, dtypes or attributes."""


@dataclass(frozen=True, slots=True)
class Meta:
    """Shape and dtype of a node's value. `weak` marks a wrapped Python scalar, which
    takes part in type promotion at the lowest priority (as in PyTorch)."""

    shape: tuple[int, ...]
    dtype: str
    weak: bool = False

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * ITEMSIZE[self.dtype]


def scalar_meta(value: float | bool) -> Meta:
    """A Python number: carried at full precision (float64/int64), promoted weakly."""
    if isinstance(value, bool):
        return Meta((), "bool", weak=True)
    if isinstance(value, int):
        return Meta((), "int64", weak=True)
    return Meta((), "float64", weak=True)


def _category(dtype: str | None) -> int:
    if dtype is None:
        return -1
    if dtype == "bool":
        return 0
    return 2 if dtype in FLOATING else 1


_ORDER = {d: i for i, d in enumerate(DTYPES)}


def promote_types(a: str | None, b: str | None) -> str | None:
    """PyTorch's promote_types for the dtypes we carry."""
    if a is None or b is None:
        return a or b
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    if {a, b} == {"uint8", "int8"}:
        return "int16"
    return a if _ORDER[a] > _ORDER[b] else b


def _combine(higher: str | None, lower: str | None) -> str | None:
    if higher in FLOATING:
        return higher
    if higher == "bool" or lower in FLOATING:
        return promote_types(higher, lower)
    return higher if higher is not None else lower


def result_type(metas: list[Meta]) -> str:
    """torch.result_type: tensors with dims outrank 0-d tensors, which outrank Python
    scalars, unless a lower group has a higher category (bool < integer < float)."""
    dim = zero = wrapped = None
    for m in metas:
        if m.weak:
            d = DEFAULT_FLOAT if m.dtype in FLOATING else m.dtype
            wrapped = promote_types(wrapped, d)
        elif m.shape:
            dim = promote_types(dim, m.dtype)
        else:
            zero = promote_types(zero, m.dtype)
    return _combine(dim, _combine(zero, wrapped))


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy/PyTorch broadcasting, with PyTorch's error message."""
    if a == b or not b:  # the common cases, on every op the SDK records
        return a
    if not a:
        return b
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    if pa == pb:
        return pa
    out = [0] * n
    for i in range(n - 1, -1, -1):  # PyTorch reports the last mismatching dim
        x, y = pa[i], pb[i]
        if x == y or y == 1:
            out[i] = x
        elif x == 1:
            out[i] = y
        else:
            raise OpError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) "
                f"at non-singleton dimension {i}"
            )
    return tuple(out)


def expand_shape(src: tuple[int, ...], size: tuple[int, ...]) -> tuple[int, ...]:
    """Tensor.expand's rule (-1 keeps a size), with PyTorch's message at the first
    mismatch found from the last dim."""
    lead = len(size) - len(src)
    if lead < 0:
        raise OpError(f"expand: the number of sizes provided ({len(size)}) must be greater or "
                      f"equal to the number of dimensions in the tensor ({len(src)})")
    out = list(size)
    for i in range(len(size) - 1, -1, -1):
        have = src[i - lead] if i >= lead else 1
        if out[i] == -1 and i >= lead:
            out[i] = have
        elif have != out[i] and have != 1:
            raise OpError(f"The expanded size of the tensor ({out[i]}) must match the existing "
                          f"size ({have}) at non-singleton dimension {i}.  Target sizes: "
                          f"{list(size)}.  Tensor sizes: {list(src)}")
    return tuple(out)


def normalize_dims(dim, ndim: int) -> tuple[int, ...]:
    """dim=None, an int or a sequence → sorted non-negative dims, PyTorch's range error."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
    out = set()
    for d in dims:
        if not lo <= d <= hi:
            raise OpError(
                f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {d})"
            )
        out.add(d % ndim if ndim else 0)
    return tuple(sorted(out))


_TORCH_NAMES = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char",
                "uint8": "Byte", "bool": "Bool", "float16": "Half", "float32": "Float",
                "float64": "Double"}


def torch_dtype_name(dtype: str) -> str:
    """The name PyTorch's error messages use for a dtype ("Float", "Long", ...)."""
    return _TORCH_NAMES[dtype]


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def check_dim(dim: int, ndim: int) -> int:
    """One dim, wrapped to [0, ndim), with PyTorch's range error (0-d tensors take -1/0)."""
    return normalize_dims(dim, ndim)[0] if ndim else normalize_dims(dim, 0)[0]
