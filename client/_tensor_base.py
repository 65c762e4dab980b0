"""The lazy tensor's state: a handle on a graph node, with PyTorch's autograd attributes.

Building a tensor records a node and checks its shape and dtype at once (errors surface at
the line that made them); nothing is computed until a value is needed (print, item(),
bool(), numpy(), ...), which costs one round trip for everything that value depends on.

`TensorBase` holds what every tensor is (node, autograd attributes, values, dtype casts,
new values) and `apply` records one catalog op. The modules that define methods
(_ops, _shape, _select, ...) build on these two; `remotegrad.Tensor` (in _tensor) is
TensorBase with those methods, and is the class every new tensor gets (`new`).
"""

from __future__ import annotations

import builtins
import threading
import warnings
import weakref
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np
from remotegrad.proto import catalog
from remotegrad.proto.catalog import FLOATING

from . import _dtypes, _to, _views
from ._format import format_scalar, tensor_repr
from ._function import AccumulateGrad, Function, function_class
from ._grad_mode import _state as _grad_state
from ._node import Node, checked, const, leaf, op_node, siblings
from ._op_table import SAVES, VIEWS, static_name
from ._session import materialize
from ._tensor_meta import TensorMeta, torch_type_name

if TYPE_CHECKING:
    from ._tensor import Tensor

Scalar = (builtins.bool, builtins.int, builtins.float)

NONLEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more informations."
)

# The class every new tensor gets: remotegrad.Tensor, which _tensor defines over TensorBase
# and hands over once (set_tensor_class) when it is imported. This one late binding is what
# lets the modules below _tensor make tensors without importing it (PyTorch's C++ side
# learns its Python Tensor class the same way).
_tensor_class: type[TensorBase] | None = None


def set_tensor_class(cls: type[TensorBase]) -> None:
    global _tensor_class
    _tensor_class = cls


def new(node: Node) -> Tensor:
    """A new remotegrad.Tensor over `node`."""
    return _tensor_class(node)


def from_array(array) -> Tensor:
    """A new leaf tensor holding `array` (as Tensor._from_array)."""
    return _tensor_class(leaf(np.asarray(array)))


# Set by autograd.forward_ad while a dual level is open: tensor → (hide its grad_fn, its
# tangent or None), for repr.
dual_repr: Any = None

# vmap's tracing (func/_batching.Tape): TAPING counts the tapes open in any thread, and
# apply hands its calls to this thread's own, TAPES.tape.
TAPING = 0
TAPES = threading.local()

# _default_dtype.resolve while the program's default float is not the catalog's (float32):
# it casts the operands of an op whose float32 result the catalog's default made.
default_float: Any = None


def apply(op: str, *operands: Any, torch_name: str | None = None, **attrs: Any) -> Tensor:
    """Record `op` over tensors and Python numbers; track it for autograd when needed."""
    if TAPING:
        tape = getattr(TAPES, "tape", None)
        if tape is not None:
            return tape(op, operands, torch_name, attrs)
    # The hot path of recording: one pass over the operands, the catalog's verdict looked
    # up (_node.checked), and nothing more when no operand requires grad. Loops, not
    # comprehensions: on Python 3.11 each comprehension is a call of its own.
    nodes = []
    needs = False
    refused = None  # an operand's history PyTorch refuses (_views.refusal)
    for x in operands:
        if isinstance(x, TensorBase):
            if x._view is not None:
                refused = _views.check_read(x, True) or refused
            nodes.append(x._node)
            if not needs and (x.grad_fn is not None or x._requires_grad):
                needs = True
        else:
            nodes.append(_operand(x))
    nodes = tuple(nodes)
    metas = tuple(map(_META, nodes))
    try:
        meta, full, akey = checked(op, metas, attrs)
    except Exception:
        if refused and _grad_state.enabled:  # PyTorch's autograd reads the history first
            raise RuntimeError(refused) from None
        raise
    if default_float is not None and meta.dtype == "float32":  # see _default_dtype
        cast = default_float(op, operands, metas, full)
        if cast is not None:
            return apply(op, *cast, torch_name=torch_name, **attrs)
    node = Node(op, nodes, full, meta, False, akey)
    out = _tensor_class(node)
    if op in VIEWS and len(nodes) == 1:
        _views.track(operands[0], out, torch_name)
    if not needs:
        return out
    differentiable = _DIFFERENTIABLE.get(op)
    if differentiable is None:
        differentiable = _differentiable(op, catalog.get(op))
    grad_mode = _grad_state.enabled
    if not (grad_mode and differentiable and meta.dtype in FLOATING):
        if differentiable:
            # Not recorded for autograd (no_grad, or an integer result): cut the inputs that
            # require grad off with `detach`, or the engine would differentiate through here.
            node.inputs = tuple([_cut(x) if isinstance(x, TensorBase) and x.requires_grad
                                 else n for x, n in zip(operands, nodes)])
        if not grad_mode and op in VIEWS and len(nodes) == 1:
            # PyTorch: a view made under no_grad of a tensor that requires grad requires
            # grad too, with no history and no gradient of its own (a leaf that never gets
            # .grad).
            out._requires_grad = out._no_grad_view = True
        return out
    if refused:
        raise RuntimeError(refused)
    node.tracked = True
    edges = []
    for x in operands:
        if isinstance(x, TensorBase):
            fn = x.grad_fn
            edges.append(((fn if fn is not None else _edge(x)), 0))
        else:
            edges.append(_NO_EDGE)
    found = _FUNCTIONS.get((op, torch_name))
    if found is None:
        name = torch_name or static_name(op)
        found = _FUNCTIONS[op, torch_name] = (name, function_class(name),
                                                _save_plan(SAVES.get(name, "")))
    name, cls, plan = found
    fn = cls(node, tuple(edges))
    out.grad_fn = fn
    out._vc[1] = name
    if plan:  # a Function starts with no saved tensors
        fn._saved = _saved_by(plan, operands, out)
    return out


_META = attrgetter("meta")
_NO_EDGE = (None, 0)
_DIFFERENTIABLE: dict[str, builtins.bool] = {}
# (op, the caller's torch_name) -> (grad_fn name, its Function class, its save plan)
_FUNCTIONS: dict[tuple, tuple] = {}


def _differentiable(op: str, opdef) -> builtins.bool:
    found = _DIFFERENTIABLE.get(op)
    if found is None:
        found = _DIFFERENTIABLE[op] = opdef.differentiable
    return found


def _saved_by(plan: tuple, operands: tuple, out: Tensor) -> list:
    """Versions of the tensors PyTorch's node would save, checked again at backward."""
    operand_codes, result = plan
    saved = []
    for index, other in operand_codes:
        if index >= len(operands) or not isinstance(operands[index], TensorBase):
            continue
        if other is not None:  # saved only when the other operand requires grad
            x = operands[other]
            if not (isinstance(x, TensorBase) and x.requires_grad):
                continue
        t = operands[index]
        entry = (t._vc, t._vc[0], False, t._node.meta)
        saved.append(_SelfSave(entry) if index == 0 else entry)
    if result:
        saved.append((out._vc, out._vc[0], True, out._node.meta))
    return saved


def _save_plan(codes: str) -> tuple:
    """SAVES' codes as (operand index, index of the operand whose requires_grad it depends
    on, or None) pairs and whether the result is saved; () for a node that saves nothing
    (made once per grad_fn kind and kept in _FUNCTIONS)."""
    if not codes:
        return ()
    operand_codes = tuple((index, other) for code, index, other in
                          (("a", 0, None), ("b", 1, None), ("c", 2, None), ("d", 3, None),
                           ("A", 0, 1), ("B", 1, 0), ("S", 1, 1))
                          if code in codes)
    return operand_codes, "r" in codes


def _rebuild(cls: type, value: np.ndarray, requires_grad: builtins.bool) -> Tensor:
    out = TensorBase.__new__(cls)
    TensorBase.__init__(out, leaf(np.array(value)))
    if requires_grad:
        out.requires_grad_(True)
    return out


def _release(nodes: list[Node]) -> None:
    """A computed value off every autograd path travels as a leaf from now on: its history
    is never needed again, so let it go (a training loop's memory stays flat)."""
    for n in nodes:
        if n.value is not None and not n.tracked:
            n.inputs = ()


def _overwritten(t: Tensor, node: Node) -> Node:
    """`node` as t's new value, t's autograd history kept (PyTorch keeps a tensor's grad_fn
    through a change autograd does not see: gradients flow through the old history)."""
    old = t._node
    if t.grad_fn is None and node is not old and node.tracked:
        # A tensor without history (a leaf, or x seen through x.detach() changed in place)
        # takes the value only, as PyTorch's: the op's history is the alias's alone, or the
        # engine would differentiate through it twice (issue 12: d.add_(x) of d = x.detach()).
        return Node("detach", (node,), {}, node.meta)
    if t.grad_fn is None or node is old or node.meta.shape != old.meta.shape \
            or node.meta.dtype != old.meta.dtype:
        return node
    return Node("overwrite", (old, node), {}, old.meta, tracked=True)


class _SelfSave(tuple):
    """A saved-tensor entry for an op's first operand (see _saved_by)."""


def _cut(t: Tensor) -> Node:
    # A detach node never holds a value itself (see Tensor._value): were it sent as a leaf,
    # it would share its input's content hash and the engine would merge the two.
    return Node("detach", (t._node,), {}, t._node.meta)


def _operand(x: Any) -> Node:
    if isinstance(x, Scalar):
        return const(x)
    if isinstance(x, np.ndarray):
        return leaf(x)
    if isinstance(x, np.generic):
        return const(x.item())
    raise TypeError(f"unsupported operand type {type(x).__name__} for a remotegrad op")


def _edge(t: Tensor) -> Function | None:
    if t.grad_fn is not None:
        return t.grad_fn
    if t._requires_grad and not t._no_grad_view:
        return t._accumulator()
    return None


def batch(tensors) -> None:
    """Fetch these tensors together: reading any of them computes all in one round trip.
    Each node holds its siblings by weak reference: a list of the nodes themselves would
    be a cycle (node -> list -> node) that kept a batch nobody reads (backward's gradients,
    consumed by an optimiser and dropped) and all its history alive until the garbage
    collector ran; a sibling nobody holds can never be read, so it need not be computed."""
    nodes = list({id(t._node): t._node for t in tensors
                  if t is not None and t._node.value is None}.values())  # each once
    if len(nodes) < 2:
        return  # a node is always fetched with itself
    refs = tuple([weakref.ref(n) for n in nodes])
    for n in nodes:
        n.batch = refs


class RemovableHandle:
    """What register_hook returns: `remove()` takes the hook off again."""

    def __init__(self, hooks: list, hook) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class TensorBase(TensorMeta):
    """What every tensor is: its node, autograd attributes, value and in-place updates."""

    __slots__ = (
        "__weakref__",
        "_acc",
        "_alias",
        "_grad",
        "_hooks",
        "_no_grad_view",
        "_node",
        "_requires_grad",
        "_vc",
        "_view",
        "grad_fn",
    )

    def __init__(self, node: Node, requires_grad: builtins.bool = False) -> None:
        if not isinstance(node, Node):  # torch.Tensor(data) / torch.Tensor(2, 3)
            node = _legacy(node, requires_grad)
            requires_grad = False
        self._node = node
        self._requires_grad = requires_grad
        self._no_grad_view = False  # made under no_grad as a view of one requiring grad
        self.grad_fn: Function | None = None
        self._grad: Tensor | None = None
        self._acc: AccumulateGrad | None = None
        self._hooks: list | None = None   # a leaf's hooks (a non-leaf's live on grad_fn)
        self._alias: list | None = None   # weakrefs to tensors sharing this one's data
        self._vc: list = [0, None]        # version, last grad_fn name; shared by aliases
        self._view = None  # a view's record, or a viewed tensor's views (_views.py)

    @classmethod
    def _from_array(cls, array) -> Tensor:
        return cls(leaf(np.asarray(array)))

    # --- autograd attributes ------------------------------------------------------------
    @property
    def requires_grad(self) -> builtins.bool:
        return self.grad_fn is not None or self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: builtins.bool) -> None:
        self._set_requires_grad(flag, method=False)

    def _set_requires_grad(self, flag: builtins.bool, method: builtins.bool) -> None:
        if self.grad_fn is not None:
            if flag and method:
                return  # requires_grad_() on a non-leaf that already requires grad
            hint = "" if flag else (
                " If you want to use a computed variable in a subgraph that doesn't require "
                "differentiation use var_no_grad = var.detach().")
            raise RuntimeError("you can only change requires_grad flags of leaf variables."
                               + hint)
        if flag and self._node.meta.dtype not in FLOATING:
            raise RuntimeError("only Tensors of floating point dtype can require gradients"
                               if method else "only Tensors of floating point and complex "
                               "dtype can require gradients")
        self._requires_grad = builtins.bool(flag)
        self._no_grad_view = False

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        self._set_requires_grad(requires_grad, method=True)
        return self

    @property
    def is_leaf(self) -> builtins.bool:
        return self.grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        if self.grad_fn is not None and not self.retains_grad and self._grad is None:
            warnings.warn(NONLEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            self._check_grad(value)
        self._grad = value

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

    def _check_grad(self, value: Tensor) -> None:
        if not isinstance(value, TensorBase):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                            f"type {type(value).__name__}")
        if tuple(value.shape) != tuple(self.shape):
            raise RuntimeError(
                f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of "
                f"size '{list(self.shape)}'. Please ensure that the gradient and the tensor are "
                "the same size")
        if value.dtype != self.dtype:
            raise RuntimeError(
                f"attempting to assign a gradient with dtype '{_C_NAMES[value.dtype.name]}' to a "
                f"tensor with grad_dtype '{torch_type_name(self.dtype.name)}'. The gradient must "
                "match the tensor's grad_dtype (defaults to the tensor's dtype). You can set the "
                "tensor's grad_dtype attribute with a specific dtype, or None to allow any dtype. "
                "Set grad_dtype with caution. Diverging the dtypes of a tensor and its gradient "
                "may break downstream systems that assume they match.")

    @property
    def retains_grad(self) -> builtins.bool:
        return self.grad_fn is not None and self.grad_fn._retain is not None

    def retain_grad(self) -> None:
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn._retain = weakref.ref(self)

    def register_hook(self, hook) -> RemovableHandle:
        """`hook(grad)` runs when this tensor's gradient is computed; it may return a new
        gradient. The gradient it sees is lazy: reading its value costs a round trip."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            if self.grad_fn._hooks is None:
                self.grad_fn._hooks = []
            hooks = self.grad_fn._hooks
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def _accumulator(self) -> AccumulateGrad:
        if self._acc is None or self._acc.node is not self._node:
            self._acc = AccumulateGrad(self)
        return self._acc

    # --- detaching and aliasing ------------------------------------------------------------
    def detach(self) -> Tensor:
        out = _tensor_class(op_node("detach", (self._node,), None, tracked=False))
        if self._view is not None and _views.detach_view(self, out):
            return out  # a view of the same root, without history (issue 12)
        return self._share(out)

    def _share(self, other: Tensor) -> Tensor:
        """Make `other` an alias of this tensor's data: in-place updates reach both."""
        if self._alias is None:
            self._alias = [weakref.ref(self)]
        elif len(self._alias) > 16:
            self._alias[:] = [r for r in self._alias if r() is not None]
        self._alias.append(weakref.ref(other))
        other._alias = self._alias
        other._vc = self._vc
        return other

    def detach_(self) -> Tensor:
        if self.grad_fn is not None:
            self._set_node(self.detach()._node)
            self.grad_fn = None
        self._requires_grad = False
        return self

    def clone(self, *, memory_format=None) -> Tensor:
        return apply("cast", self, dtype=self._node.meta.dtype, torch_name="CloneBackward0")

    @property
    def data(self) -> Tensor:
        out = self.detach()
        out._vc = [0, None]  # unlike detach(), .data changes are invisible to autograd
        return out

    @data.setter
    def data(self, other: Tensor) -> None:
        # a node of its own (see _cut): sharing other's, the two would be one input to the
        # engine (x.data = y, then x.requires_grad_() and x * y, gave x the gradient 2x)
        self._node = other._node if other is self else _cut(other)

    # --- values ---------------------------------------------------------------------------
    def _value(self) -> np.ndarray:
        """This tensor's value, fetched (with its batch and pending updates) if unknown.
        A detach node reads through to its input and never stores the value itself, unless
        the cluster holds it by name (a kept result: no input left, fetched by its name)."""
        if self._view is not None:
            _views.check_read(self)
        node, chain = self._node, []
        while node.op == "detach" and node.value is None and node.inputs:
            chain.append(node)
            node = node.inputs[0]
        if node.value is None:
            batch = [node, *siblings(node), *(m for n in chain if n.batch for m in siblings(n))]
            materialize(batch)
            _release(batch)
        return node.value

    def numpy(self, *, force: builtins.bool = False) -> np.ndarray:
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead.")
        return self._value()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._value()
        return out if dtype is None else out.astype(dtype)

    def item(self) -> builtins.float | builtins.int | builtins.bool:
        if self.numel() != 1:
            raise RuntimeError(
                f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._value().item()

    def tolist(self) -> Any:
        return self._value().tolist()

    def _scalar(self) -> builtins.float | builtins.int | builtins.bool:
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self._value().item()

    def __bool__(self) -> builtins.bool:
        if self.numel() != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return builtins.bool(self._value().item())

    def __float__(self) -> builtins.float:
        return builtins.float(self._scalar())

    def __int__(self) -> builtins.int:
        return builtins.int(self._scalar())

    def __index__(self) -> builtins.int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def __repr__(self, *, tensor_contents=None) -> str:
        suffixes = []
        hidden, tangent = dual_repr(self) if dual_repr is not None else (False, None)
        if hidden:
            pass  # a dual's stand-in grad only (autograd.forward_ad): PyTorch shows none
        elif self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        if tangent is not None:  # PyTorch writes a 0-d tangent as its number
            suffixes.append(f"tangent={tangent.item() if tangent.dim() == 0 else tangent!r}")
        return tensor_repr(self._value(), dtype=self._node.meta.dtype, suffixes=suffixes)

    def __format__(self, spec: str) -> str:
        if self.dim() == 0:
            return format_scalar(self._value(), spec)
        return object.__format__(self, spec)

    def __reduce_ex__(self, protocol):
        return (_rebuild, (type(self), self.detach()._value(), self.requires_grad))

    def __deepcopy__(self, memo) -> Tensor:
        if not self.is_leaf:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment.  If you were "
                               "attempting to deepcopy a module, this may be because of a "
                               "torch.nn.utils.weight_norm usage, see "
                               "https://github.com/pytorch/pytorch/pull/103001")
        out = _rebuild(type(self), self.detach()._value(), self.requires_grad)
        if self._grad is not None:
            out._grad = self._grad.detach().clone()
        memo[id(self)] = out
        return out

    # --- dtype casts ----------------------------------------------------------------------
    def to(self, *args, **kwargs) -> Tensor:
        """to(dtype), to(device), to(device, dtype), to(other), with PyTorch's overloads and
        errors (_to.parse: a string is a device there); the CPU is the only device here (the
        cluster chooses where arithmetic runs); a dtype change (or copy=True) records a cast."""
        name, copy = _to.parse(self._node.meta.dtype, args, kwargs)
        if name == self._node.meta.dtype and not copy:
            return self
        return apply("cast", self, dtype=name)

    def type(self, dtype=None, non_blocking=False, **kwargs) -> str | Tensor:
        if dtype is None:
            return f"torch.{torch_type_name(self._node.meta.dtype)}Tensor"
        if isinstance(dtype, str):  # 'torch.DoubleTensor' (not a device, unlike to's)
            dtype = getattr(_dtypes, _to.type_name(dtype))
        return self.to(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(_dtypes.float32)

    def double(self) -> Tensor:
        return self.to(_dtypes.float64)

    def half(self) -> Tensor:
        return self.to(_dtypes.float16)

    def long(self) -> Tensor:
        return self.to(_dtypes.int64)

    def int(self) -> Tensor:
        return self.to(_dtypes.int32)

    def short(self) -> Tensor:
        return self.to(_dtypes.int16)

    def bool(self) -> Tensor:
        return self.to(_dtypes.bool)

    def byte(self) -> Tensor:
        return self.to(_dtypes.uint8)

    # --- new values (in-place ops are _inplace's) ------------------------------------------
    @property
    def _version(self) -> builtins.int:
        return self._vc[0]

    def _set_node(self, node: Node, unrecorded: builtins.bool = False) -> None:
        """Give this tensor (and its aliases) a new value. `unrecorded`: autograd did not
        record the change (no_grad), so a history this tensor has is kept; an alias's
        history (x.detach() / x.data changed in place) is always kept."""
        if TAPING and getattr(TAPES, "tape", None) is not None:
            TAPES.tape.written(self)  # vmap maps per slice instead, before anything changes
        self._vc[0] += 1
        self._node = _overwritten(self, node) if unrecorded else node
        for ref in self._alias or ():
            other = ref()
            if other is not None and other is not self:
                new = _overwritten(other, node)
                if new is node and other.grad_fn is None:
                    # two tensors without history never share a node: the engine would
                    # take them for one input (w = x.detach(); w.zero_() under no_grad,
                    # then w * x counted x's gradient twice)
                    new = Node("detach", (node,), {}, node.meta)
                other._node = new
                if other._view is not None:
                    _views.written(other)
        if self._view is not None:
            _views.written(self)

    __hash__ = object.__hash__


_C_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half",
            "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
            "uint8": "unsigned char", "bool": "bool"}


def _legacy(data, size) -> Node:
    if isinstance(data, builtins.int) and not isinstance(data, builtins.bool):
        shape = (data,) + ((size,) if isinstance(size, builtins.int) and size is not False
                           and size is not True else ())
        return leaf(np.zeros(shape, _dtypes.get_default_dtype().name))
    return leaf(np.asarray(data, dtype=_dtypes.get_default_dtype().name))


_views.connect(apply, _overwritten)  # views are refreshed by recording (see _views.py)
