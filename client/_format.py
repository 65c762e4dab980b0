"""Render tensor contents exactly the way ``repr(torch.Tensor)`` does.

The client holds remote tensors as plain numpy arrays plus a dtype name, but
users expect printing to look like local PyTorch.  This module reproduces
PyTorch's (CPU, strided, real-valued) printing rules without importing torch:

* every element is formatted with one shared ``_Formatter`` so columns align;
* floats switch between fixed, "integer" (``1.``) and scientific notation
  based on the range of the non-zero finite values;
* tensors with more than ``threshold`` elements are summarised with ``...``,
  keeping ``edgeitems`` entries at both ends of every dimension;
* trailing ``key=value`` items (size, dtype, grad info) wrap at ``linewidth``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "PrintOptions",
    "format_scalar",
    "get_printoptions",
    "set_printoptions",
    "tensor_repr",
]

# Dtypes PyTorch leaves implicit in a non-empty tensor's repr, besides the default float
# (torch.get_default_dtype(), read at each repr).  (For *empty* tensors only the default
# float dtype is implicit; see ``tensor_repr``.)
_IMPLICIT_DTYPES = frozenset({"int64", "bool"})


def _default_float() -> str:
    from . import _dtypes  # (this module imports nothing of the SDK at import time)
    return _dtypes.get_default_dtype().name


_PREFIX = "tensor("


@dataclasses.dataclass
class PrintOptions:
    """Module-global print settings, mirroring ``torch.set_printoptions``."""

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_PROFILES: dict[str, tuple[int, float, int, int]] = {
    # name: (precision, threshold, edgeitems, linewidth)
    "default": (4, 1000, 3, 80),
    "short": (2, 1000, 2, 80),
    "full": (4, math.inf, 3, 80),
}

_OPTS = PrintOptions()


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Change the global print options; same semantics as torch's version."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"unknown print profile {profile!r}")
        (_OPTS.precision, _OPTS.threshold, _OPTS.edgeitems, _OPTS.linewidth) = _PROFILES[profile]
    if precision is not None:
        _OPTS.precision = precision
    if threshold is not None:
        _OPTS.threshold = threshold
    if edgeitems is not None:
        _OPTS.edgeitems = edgeitems
    if linewidth is not None:
        _OPTS.linewidth = linewidth
    # Like torch, sci_mode is always overwritten, so omitting it resets to auto.
    _OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """Current options as keyword arguments for ``set_printoptions``."""
    return dataclasses.asdict(_OPTS)


def _is_floating(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


class _Formatter:
    """Chooses one notation and column width for all printed elements."""

    def __init__(self, sample: np.ndarray, floating: bool) -> None:
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        if not floating:
            self.width = max([self.width] + [len(str(v)) for v in sample.ravel().tolist()])
            return

        # Widening to float64 is exact for float16/32, and PyTorch formats
        # Python floats (i.e. doubles) too, so digits come out identical.
        flat = sample.astype(np.float64).ravel()
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return  # only zeros/nan/inf: keep integer mode, width 1
        mags = np.abs(vals)
        lo, hi = mags.min(), mags.max()
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        if _OPTS.sci_mode is not None:
            self.sci_mode = _OPTS.sci_mode
        else:
            with np.errstate(over="ignore"):  # huge/tiny ratio is just inf
                ratio = hi / lo
            self.sci_mode = bool(ratio > 1000.0 or hi > 1.0e8 or lo < 1.0e-4)

        # Width is measured on non-zero finite values only; zeros, nan and inf
        # are merely padded to it (which is why ``-0.`` may stick out).
        extra = 1 if self.int_mode and not self.sci_mode else 0  # trailing "."
        self.width = max(len(self._digits(v)) + extra for v in vals.tolist())

    def _digits(self, value: float) -> str:
        if self.sci_mode:
            return f"{value:.{_OPTS.precision}e}"
        if self.int_mode:
            return f"{value:.0f}"
        return f"{value:.{_OPTS.precision}f}"

    def format(self, value: Any) -> str:
        if not self.floating:
            text = str(value)
        else:
            text = self._digits(value)
            if self.int_mode and not self.sci_mode and math.isfinite(value):
                text += "."  # marks integer-valued floats as floats: "1."
        return text.rjust(self.width)


def _summary_rows(values: np.ndarray) -> Iterator[np.ndarray]:
    """Yield the parts of ``values`` that survive summarisation."""
    edge = _OPTS.edgeitems
    if values.ndim <= 1:
        if values.ndim == 1 and values.shape[0] > 2 * edge:
            # ``[-0:]`` is the whole vector; torch has the same quirk.
            yield values[:edge]
            yield values[-edge:]
        else:
            yield values
        return
    n = values.shape[0]  # with edge == 0 nothing is kept, as in torch
    rows = range(n) if n <= 2 * edge else [*range(edge), *range(n - edge, n)]
    for i in rows:
        yield from _summary_rows(values[i])


def _kept_indices(n: int, summarize: bool) -> list[int | None]:
    """Indices to print along one dimension; ``None`` marks the ellipsis."""
    edge = _OPTS.edgeitems
    if summarize and n > 2 * edge:
        return [*range(edge), None, *range(n - edge, n)]
    return list(range(n))


def _vector_str(values: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if summarize and not _OPTS.edgeitems:
        items = ["..."]
    else:
        items = [
            " ..." if i is None else fmt.format(values[i].item())
            for i in _kept_indices(values.shape[0], summarize)
        ]
    # Each element takes its width plus ", "; at least one per line.
    per_line = max(1, math.floor((_OPTS.linewidth - indent) / (fmt.width + 2)))
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(values: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if values.ndim == 0:
        return fmt.format(values.item())
    if values.ndim == 1:
        return _vector_str(values, indent, summarize, fmt)
    parts = [
        "..." if i is None else _nested_str(values[i], indent + 1, summarize, fmt)
        for i in _kept_indices(values.shape[0], summarize)
    ]
    # Deeper tensors get blank lines between their blocks, one per extra dim.
    sep = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"


def _body_str(values: np.ndarray, dtype: str, indent: int) -> str:
    summarize = values.size > _OPTS.threshold
    if summarize:
        parts = [part.ravel() for part in _summary_rows(values)]
        sample = np.concatenate(parts) if parts else values.ravel()[:0]
    else:
        sample = values
    fmt = _Formatter(sample, _is_floating(dtype))
    return _nested_str(values, indent, summarize, fmt)


def _add_suffixes(text: str, suffixes: Sequence[str], indent: int) -> str:
    """Append ``, suffix`` items, wrapping onto a new line when too long."""
    out = [text]
    # Off by a couple of characters on purpose: this is torch's exact rule.
    last_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_len + len(suffix) + 2 > _OPTS.linewidth:
            out.append(",\n" + " " * indent + suffix)
            last_len = indent + len(suffix)
        else:
            out.append(", " + suffix)
            last_len += len(suffix) + 2
    out.append(")")
    return "".join(out)


def _shape_str(values: np.ndarray) -> str:
    return "size=" + str(tuple(int(n) for n in values.shape))


def tensor_repr(values: np.ndarray, *, dtype: str, suffixes: Sequence[str] = ()) -> str:
    """``repr()`` of a CPU tensor with these ``values`` and torch ``dtype`` name.

    ``suffixes`` are caller-formatted trailing items (e.g. ``grad_fn=<...>``),
    placed after the size/dtype items exactly as PyTorch does.
    """
    values = np.asarray(values)
    indent = len(_PREFIX)
    extra: list[str] = []
    default = _default_float()
    if values.size == 0:
        # Empty tensors spell out their shape (unless 1-d) and, as there is no
        # element to hint at it, any dtype other than the default float.
        if values.ndim != 1:
            extra.append(_shape_str(values))
        if dtype != default:
            extra.append(f"dtype=torch.{dtype}")
        body = "[]"
    else:
        if not _OPTS.edgeitems:
            extra.append(_shape_str(values))  # nothing visible reveals the shape
        if dtype not in _IMPLICIT_DTYPES and dtype != default:
            extra.append(f"dtype=torch.{dtype}")
        body = _body_str(values, dtype, indent)
    return _add_suffixes(_PREFIX + body, [*extra, *suffixes], indent)


def format_scalar(value: np.ndarray | np.generic, spec: str) -> str:
    """``format(t, spec)`` for a 0-d tensor ``t`` holding ``value``.

    PyTorch formats ``t.item()``, i.e. the value as a Python scalar (float32
    widened to a double, so all its binary digits show).
    """
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"format_scalar needs a 0-d value, got shape {arr.shape}")
    return format(arr.item(), spec)
