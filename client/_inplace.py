"""In-place updates: `x.add_(y)`, `x[i] = v`, fill_, copy_, zero_ and optimiser steps.

An in-place op computes the new value from the old one as a new node (nodes never change),
then gives it to the tensor and its aliases (`_assign`), keeping PyTorch's autograd view
of it: the version counter, the grad_fn the tensor now has, and what that grad_fn saved.
Tensor gets these from InPlaceMethods.
"""

from __future__ import annotations

import builtins
import weakref
from typing import TYPE_CHECKING

import numpy as np
from remotegrad.proto.catalog import FLOATING

from ._function import function_class
from ._grad_mode import is_grad_enabled, set_grad_enabled
from ._node import Node, leaf
from ._session import note_update
from . import _views
from ._tensor_base import TensorBase, _cut, _edge, _SelfSave, apply, new
from ._tensor_meta import torch_type_name

if TYPE_CHECKING:
    from ._tensor import Tensor


def _saved_in_place(saved: list, target: Tensor, out: Tensor) -> list:
    """The saved tensors of an op that ran in place on `target`, as PyTorch has them: the
    original self is saved as a copy (its later changes are not checked), and the result
    is the target itself, at its version after the op."""
    kept = []
    for entry in saved:
        counter = entry[0]
        if type(entry) is _SelfSave and counter is target._vc:
            continue
        if counter is out._vc:
            entry = (target._vc, target._vc[0], True, entry[3])
        kept.append(entry)
    return kept



# an in-place op's function -> the view it changed, where the op saved its result (_through):
# PyTorch's saved result is that view, so a create_graph gradient through the op reads the
# view (and its grad_fn) even where the loss is of its base (issue 12)
SAVED_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def saved_views(functions: list) -> tuple[list, list[Node]]:
    """The grad_fns of the views the functions' ops saved as their result, and those views'
    nodes (an overwrite: a later change of the view is refused at backward by its saved
    version, _saved_in_place), for a create_graph gradient's naming."""
    fns, nodes = [], []
    for f in functions:
        ref = SAVED_VIEWS.get(f)
        view = None if ref is None else ref()
        if view is not None and view._node.op == "overwrite" and view.grad_fn is not None:
            fns.append(view.grad_fn)
            nodes.append(view._node)
    return fns, nodes


class InPlaceMethods:
    """Tensor's in-place updates (the op table's `<name>_` forms come through `_assign`)."""

    __slots__ = ()

    def _check_inplace(self, operands: tuple = (), reads: tuple = ()) -> None:
        """PyTorch's refusals before an in-place op computes (`operands`: its other
        inputs, which its TensorIterator checks for partial overlap before their shapes;
        `reads`: other inputs it reads)."""
        if self._view is not None and self._view.meta is not None and is_grad_enabled() \
                and any(isinstance(x, TensorBase) and x.requires_grad
                        for x in (self, *operands, *reads)):
            msg = _views.refusal(self, direct=True)  # a view of no_grad or split/chunk
            if msg:
                raise RuntimeError(msg)
        if self._no_grad_view and self._requires_grad and is_grad_enabled():
            raise RuntimeError(
                "A view was created in no_grad mode and is being modified inplace with grad "
                "mode enabled. Given that this use case is ambiguous and error-prone, it is "
                "forbidden. You can clarify your code by moving both the view and the inplace "
                "either both inside the no_grad block (if you don't want the inplace to be "
                "tracked) or both outside (if you want the inplace to be tracked).")
        if self.grad_fn is None and self._requires_grad and is_grad_enabled():
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation.")
        if self._view is not None and is_grad_enabled() and _views.leaf_view(self):
            raise RuntimeError("a view of a leaf Variable that requires grad is being used "
                               "in an in-place operation.")
        if operands and self._view is not None:
            _views.check_operands(self, operands)
        _views.inplace_input(self)  # checked: the op reads the view as CopySlices does

    def _assign(self, out: Tensor, same_shape: builtins.bool = True) -> Tensor:
        """Make `out` (computed from this tensor's old value) this tensor's new value."""
        meta, mine = out._node.meta, self._node.meta
        if same_shape and meta.shape != mine.shape:
            raise RuntimeError(f"output with shape {list(mine.shape)} doesn't match the "
                               f"broadcast shape {list(meta.shape)}")
        if meta.dtype != mine.dtype:
            if not _can_cast(meta.dtype, mine.dtype):
                raise RuntimeError(f"result type {torch_type_name(meta.dtype)} can't be cast to "
                                   f"the desired output type {torch_type_name(mine.dtype)}")
        fn = out.grad_fn
        if same_shape and self._view is not None and _views.writes_through(
                self, inputs=out._node.inputs):
            return self._through(out if meta.dtype == mine.dtype
                                 else apply("cast", out, dtype=mine.dtype), fn)
        node = out._node if meta.dtype == mine.dtype else \
            apply("cast", out, dtype=mine.dtype)._node
        if fn is not None:
            # PyTorch casts back inside the op's kernel: the tensor's node is still the op's.
            fn.node = node
        if not same_shape:
            _views.reshaping(self)
        self._set_node(node, unrecorded=fn is None and not is_grad_enabled())
        if fn is not None:
            self.grad_fn = fn
            self._vc[1] = type(fn).__name__
            if fn._saved:
                fn._saved = _saved_in_place(fn._saved, self, out)
        if self._node.value is None:
            note_update(self)
        if not same_shape:  # t_()/squeeze_(): its strides change with its shape
            _views.reshaped(self)
        elif self._view is not None or self._alias:
            _views.settled(self)
        return self

    def _through(self, value: Tensor, fn) -> Tensor:
        """This view's new value goes to its root (_views.write_through). The op's copy
        of this view's old value is no saved view: later changes do not invalidate it."""
        if fn is not None and fn._saved:
            fn._saved = [e for e in fn._saved
                         if not (type(e) is _SelfSave and e[0] is self._vc)]
        _views.write_through(self, value)
        if fn is not None and any(e[0] is value._vc for e in fn._saved):
            # the op saved its result: PyTorch's is this view after the op, so the op's rule
            # reads this node (the engine's autodiff reads an overwrite as its value's result)
            self._node = Node("overwrite", (self._node, value._node), {}, self._node.meta,
                              tracked=True)
            SAVED_VIEWS[fn] = weakref.ref(self)
            # ...at its version after the op: a later change of it or its base is refused.
            # (Named as the op's output, as PyTorch where the view changed again; where its
            # base changed PyTorch names the view's regenerated AsStrided, which our eager
            # refresh has replaced by then.)
            fn._saved = _saved_in_place(fn._saved, self, value)
        return self

    def _inplace(self, op: str, *operands, **attrs) -> Tensor:
        self._check_inplace()
        return self._assign(apply(op, self, *operands, **attrs))

    def zero_(self) -> Tensor:
        return self._fill(0, "ZeroBackward0")

    def fill_(self, value) -> Tensor:
        return self._fill(value, "FillBackward3" if isinstance(value, TensorBase)
                          else "FillBackward2")

    def _fill(self, value, name: str) -> Tensor:
        self._check_inplace(reads=(value,))
        if isinstance(value, TensorBase):
            if value.dim() != 0:
                raise RuntimeError("fill_ only supports 0-dimension value tensor but got "
                                   f"tensor with {value.dim()} dimensions.")
            return self._replace(value, name)
        dtype = self._node.meta.dtype
        array = np.full(self._node.meta.shape, scalar_as(value, dtype), dtype)
        return self._replace(new(leaf(array)), name)

    def copy_(self, src, non_blocking: builtins.bool = False) -> Tensor:
        self._check_inplace(reads=(src,))
        if not isinstance(src, TensorBase):
            src = new(leaf(np.asarray(src)))
        return self._replace(src, "CopyBackwards")

    def _replace(self, src: Tensor, name: str) -> Tensor:
        """fill_/copy_: this tensor takes src's value (cast and broadcast to it). Recorded
        as PyTorch's `name` node, over this tensor's old history and src's, when grad mode
        is on and either requires grad: the gradient goes to src, none to the old value."""
        # Only a floating-point tensor can require grad: an integer one takes the value only.
        # (fill_ of a 0-d tensor reads its number first: PyTorch checks no overlap with it)
        if self._view is not None and _views.writes_through(
                self, fill=name in ("FillBackward2", "ZeroBackward0") or (
                    name == "CopyBackwards" and _views.same_data(self, src)),
                inputs=() if name == "FillBackward3" else (src._node,)):
            value = src.to(self.dtype)
            if tuple(value.shape) != tuple(self.shape):
                value = apply("expand", value, shape=self._node.meta.shape)
            return self._through(value, None)
        record = (is_grad_enabled() and (self.requires_grad or src.requires_grad)
                  and self.is_floating_point())
        tracked = record and src.requires_grad
        edge = _edge(src) if tracked else None
        with set_grad_enabled(tracked):
            value = src.to(self.dtype)
            if tuple(value.shape) != tuple(self.shape):
                value = apply("expand", value, shape=self._node.meta.shape)
        if value is not src:
            node = value._node
        elif tracked:  # a node of its own, with src's value and its gradient
            node = Node("overwrite", (src._node, _cut(src)), {}, src._node.meta, tracked=True)
        else:
            # a node of its own all the same: two tensors sharing one are one input to the
            # engine (x.copy_(y), then x.requires_grad_() and x * y, gave x the gradient 2x)
            node = _cut(src) if src is not self else src._node
        if record:
            old = self.grad_fn
            if old is not None:  # the old history gets a zero gradient, as PyTorch's
                node = Node("replace", (self._node, node), {}, node.meta, tracked=True)
            self._set_node(node)
            edges = ((old, 0),) if name in ("FillBackward2", "ZeroBackward0") else (
                (old, 0), (edge, 0))
            self.grad_fn = function_class(name)(node, edges)
            self._vc[1] = name
        else:
            self._set_node(node, unrecorded=True)
        if self._node.value is None:
            note_update(self)
        if self._view is not None or self._alias:
            _views.settled(self)
        return self

    def set_(self, source: Tensor) -> Tensor:
        if self._view is not None:
            _views.set_(self)  # its views keep the old storage in PyTorch
        self._set_node(source._node if source is self else _cut(source))  # (see copy_)
        self._vc[0] -= 1  # set_ swaps storage; PyTorch does not count it as a write
        return self


# c10's names in "value cannot be converted to type ... without overflow".
_C10_SCALAR = {"uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int",
               "int64": "int64_t", "float16": "c10::Half", "float32": "float",
               "float64": "double"}


def scalar_as(value, dtype: str):
    """A Python number as a fill of a `dtype` tensor takes it (PyTorch's checked_convert,
    in x[i] = v, fill_, masked_fill): truncated to an integer dtype, any number to bool,
    and "value cannot be converted ... without overflow" where the type cannot hold it
    (NaN and infinity in an integer type, a finite number past a float type's range)."""
    if dtype == "bool":
        return builtins.bool(value)
    if isinstance(value, builtins.bool):
        return value
    if dtype in FLOATING:
        if dtype != "float64":
            top = builtins.float(np.finfo(dtype).max)
            v = builtins.float(value)
            if np.isfinite(v) and abs(v) > top:
                raise RuntimeError(f"value cannot be converted to type {_C10_SCALAR[dtype]} "
                                   "without overflow")
        return builtins.float(value)
    info = np.iinfo(dtype)
    if isinstance(value, builtins.float) and not (info.min <= value <= info.max):
        raise RuntimeError(f"value cannot be converted to type {_C10_SCALAR[dtype]} "
                           "without overflow")  # NaN fails the test too
    value = builtins.int(value)
    if not info.min <= value <= info.max:
        raise RuntimeError(f"value cannot be converted to type {_C10_SCALAR[dtype]} "
                           "without overflow")
    return value


def _can_cast(src: str, dst: str) -> builtins.bool:
    """PyTorch's canCast: no float to integral, no number to bool."""
    if src in FLOATING and dst not in FLOATING:
        return False
    return not (src != "bool" and dst == "bool")
