"""vmap, built in the client, by the catalog's batching rules (see _batching): the
function is traced once, on the first slice, and each op it applied is recorded again once
over the whole batch through its rule (OpDef.batch), so the graph is the size of one
slice's and a worker runs one kernel per op, not B. An op without a rule for what it meets
is mapped per slice (and stacked) on its own; the rest stays batched. Reading the result
(or any of its outputs) is ONE round trip, however large the batch.

Where the one trace cannot stand for every slice, vmap runs the function once per slice
and stacks the results, as it did before the rules (values the same, a graph B times
larger): the function read a value (.item(), printing, data-dependent Python control
flow: PyTorch refuses these inside vmap, this vmap then maps per slice), updated a batched
tensor in place, ran a custom autograd.Function over batched values, drew random numbers
with randomness='different' (each slice draws its own), or the batch is empty.

Randomness: 'error' raises after the trace (or the slice) that drew random numbers
(PyTorch raises at the draw); 'different' draws per slice; 'same' draws once for every
slice (the per-slice path replays the generator's state for every slice: the same draw).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from .. import _creation
from .._autograd import batch
from .._shape import stack
from .._tensor import Tensor
from . import _batching, _pytree
from ._forward import check_randomness

__all__ = ["vmap"]

_log = logging.getLogger(__name__)


def _name(func: Callable) -> str:
    return getattr(func, "__name__", repr(func))


def _is_dim(d: Any) -> bool:
    return d is None or (isinstance(d, int) and not isinstance(d, bool))


def _in_dims(in_dims: Any, args: tuple, where: str) -> list:
    """One in_dim (None or an int) per leaf of args."""
    if isinstance(in_dims, int) and not isinstance(in_dims, bool):
        return [in_dims] * len(_pytree.flatten(args)[0])
    if not isinstance(in_dims, tuple):
        raise ValueError(f"{where}: expected `in_dims` to be int or a (potentially nested) "
                         f"tuple matching the structure of inputs, got: {type(in_dims)}.")
    dims = _pytree.broadcast_prefix(in_dims, args, _is_dim)
    if dims is None:
        raise ValueError(f"{where}: in_dims is not compatible with the structure of `inputs`. "
                         f"in_dims has structure {_pytree.flatten(in_dims)[1]!r} but inputs "
                         f"has structure {_pytree.flatten(args)[1]!r}.")
    return dims


def _batch_size(leaves: list, dims: list, where: str) -> int:
    sizes = []
    for x, d in zip(leaves, dims):
        if d is None:
            continue
        if not isinstance(x, Tensor):
            raise ValueError(f"{where}: Got in_dim={d} for an input but the input is of type "
                             f"{type(x)}. We cannot vmap over non-Tensor arguments, please use "
                             "None as the respective in_dim")
        nd = x.dim()
        if not -nd <= d < nd:
            raise ValueError(f"{where}: Got in_dim={d} for some input, but that input is a "
                             f"Tensor of dimensionality {nd} so expected in_dim to satisfy "
                             f"-{nd} <= in_dim < {nd}.")
        sizes.append(x.shape[d])
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if len(set(sizes)) > 1:
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0]


def _slices(leaves: list, dims: list, size: int) -> list[list]:
    """The args' leaves for each index of the mapped dimension."""
    per_leaf = []
    for x, d in zip(leaves, dims):
        if d is None:
            per_leaf.append([x] * max(size, 1))
        elif size == 0:  # nothing to map: one stand-in slice gives the outputs' shapes
            shape = tuple(x.shape[:d % x.dim()]) + tuple(x.shape[d % x.dim() + 1:])
            per_leaf.append([_creation.zeros(shape, dtype=x.dtype)])
        else:
            per_leaf.append(list(x.unbind(d)))
    return [list(col) for col in zip(*per_leaf)]


class _Randomness:
    """randomness='error' / 'different' / 'same' for the client's default generator."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.start = self._state()

    @staticmethod
    def _state() -> dict:
        return _creation.default_generator.rng.bit_generator.state

    def before(self) -> None:
        self.last = self._state()
        if self.mode == "same":
            self.restart()

    def drew(self) -> bool:
        return self._state() != self.last

    def restart(self) -> None:
        _creation.default_generator.rng.bit_generator.state = self.start

    def after(self) -> None:
        if self.mode == "error" and self.drew():
            raise RuntimeError("vmap: called random operation while in randomness error mode. "
                               "Please either use the 'same' or 'different' randomness flags "
                               "on vmap or perform the randomness operation out of vmap")


def _depends(out: Tensor, inputs: list) -> bool:
    """Whether out's graph reads any of these tensors (out_dims=None needs it not to)."""
    wanted = {id(x._node) for x in inputs if isinstance(x, Tensor)}
    seen: set[int] = set()
    stack_ = [out._node]
    while stack_:
        node = stack_.pop()
        if id(node) in wanted:
            return True
        if id(node) not in seen:
            seen.add(id(node))
            stack_.extend(node.inputs)
    return False


def _combine(results: list, slice_args: list, out_dims: Any, size: int, name: str) -> Any:
    leaves, spec = _pytree.flatten(results[0])
    per_slice = [leaves]
    for r in results[1:]:
        more, other = _pytree.flatten(r)
        if other != spec:  # PyTorch traces once and cannot see this; per slice we can
            raise ValueError(f"vmap({name}, ...): `{name}` returned outputs of different "
                             f"structures for different slices: {spec.pprint()} and "
                             f"{other.pprint()}")
        per_slice.append(more)
    dims = _out_dims(out_dims, results[0], len(leaves), spec, name)
    out = []
    for i, (x, d) in enumerate(zip(leaves, dims)):
        if d is None:
            if isinstance(x, Tensor) and _depends(x, slice_args[0]):
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor "
                                 "when out_dim is None")
            out.append(x)
            continue
        if not isinstance(x, Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                             f"{type(x)}. Did you mean to set out_dims= to None for output?")
        stacked = stack([s[i] for s in per_slice], d)
        out.append(stacked.narrow(d, 0, 0) if size == 0 else stacked)
    return _pytree.unflatten(out, spec)


def _moved(x: Tensor, d: int) -> Tensor:
    d %= x.dim()
    return x if d == 0 else x.movedim(d, 0)


def _out(x: Any, batched: bool, d: Any, size: int, name: str) -> Any:
    """One output of the replay: batch dim first, moved to out_dim d (None: unbatched)."""
    if d is None:
        if batched:
            raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor "
                             "when out_dim is None")
        return x
    if not isinstance(x, Tensor):
        raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                         f"{type(x)}. Did you mean to set out_dims= to None for output?")
    if not batched:
        x = _batching._expand(x, size)
    return x.movedim(0, d) if d % x.dim() else x


def _out_dims(out_dims: Any, result: Any, n: int, spec, name: str) -> list:
    """out_dims as one dim per output leaf (`n` of them, already flattened)."""
    if isinstance(out_dims, int) and not isinstance(out_dims, bool) or out_dims is None:
        return [out_dims] * n
    dims = _pytree.broadcast_prefix(out_dims, result, _is_dim)
    if dims is None:
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is "
                         "not compatible with the structure of `outputs`. out_dims has "
                         f"structure {_pytree.flatten(out_dims)[1]!r} but outputs has "
                         f"structure {spec!r}.")
    return dims


def _by_rules(func, leaves, dims, spec, kwargs, size, out_dims, name, rand) -> Any:
    """The function traced on slice 0 and replayed over the batch (see _batching); raises
    _batching.Fallback where that cannot stand for the per-slice runs."""
    moved = [_moved(x, d) if d is not None else x for x, d in zip(leaves, dims)]
    with _batching.Tape() as tape:
        first = [m[0] if d is not None else x
                 for m, x, d in zip(moved, leaves, dims)]
        slices = {id(s._node): (s._node, m) for s, m, d in zip(first, moved, dims)
                  if d is not None}
        rand.before()
        result = func(*_pytree.unflatten(first, spec), **kwargs)
    drew = rand.drew()
    rand.after()
    if drew and rand.mode == "different":
        rand.restart()
        raise _batching.Fallback("random numbers drawn with randomness='different'")
    run = _batching.replay(tape, slices, size)
    outs, out_spec = _pytree.flatten(result)
    values = [run.value(x, x._node) if isinstance(x, Tensor) else (x, False) for x in outs]
    _batching.check_clean(run, [v for v, _ in values])
    dims_out = _out_dims(out_dims, result, len(outs), out_spec, name)
    return _pytree.unflatten([_out(v, b, d, size, name) for (v, b), d in
                              zip(values, dims_out)], out_spec)


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """func mapped over a dimension of its inputs (in_dims: an int, or a tree of ints and
    None matching the positional args) and stacked along out_dims of its outputs
    (chunk_size is accepted and has no effect: every slice is in one graph)."""
    check_randomness(randomness)
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got "
                         f"{chunk_size})")
    name = _name(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if not args:
            raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add "
                             "inputs, or you are trying to vmap over a function with no "
                             "inputs. The latter is unsupported.")
        where = f"vmap({name}, in_dims={in_dims}, ...)(<inputs>)"
        dims = _in_dims(in_dims, args, where)
        leaves, spec = _pytree.flatten(args)
        size = _batch_size(leaves, dims, where)
        rand = _Randomness(randomness)
        if size > 0 and _batching.ENABLED:
            try:
                out = _by_rules(func, leaves, dims, spec, kwargs, size, out_dims, name, rand)
            except _batching.Fallback as why:
                _batching.STATS["per_slice"] += 1
                _log.debug("vmap(%s): per slice (%s)", name, why)
            else:
                _batching.STATS["batched"] += 1
                batch([t for t in _pytree.flatten(out)[0] if isinstance(t, Tensor)])
                return out
        results, slice_args = [], []
        for sl in _slices(leaves, dims, size):
            rand.before()
            results.append(func(*_pytree.unflatten(sl, spec), **kwargs))
            rand.after()
            slice_args.append([x for x, d in zip(sl, dims) if d is not None])
        out = _combine(results, slice_args, out_dims, size, name)
        batch([t for t in _pytree.flatten(out)[0] if isinstance(t, Tensor)])
        return out

    return wrapper
