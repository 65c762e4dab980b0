"""Views write through, as PyTorch's: remotegrad's views do not share memory with the
tensor they view (the SDK tracks no strides: a view op records a new value, as any op
does), so sharing is replayed instead. Each view records its chain of view ops from its
root (views of views count from the first); where the chain names each of the view's
elements as one element of the root (basic index, narrow, squeeze, unsqueeze, transpose,
permute, split/chunk pieces: `WRITABLE`):
- an in-place change of a view becomes the root's `root[positions] = view` (PyTorch's
  CopySlices), the positions found by running the chain's own forwards over the root's
  element numbers; then
- an in-place change of a root (or of one of its aliases) refreshes its live views by
  re-applying their chains to its new value.
Chains with reshape/flatten/expand/broadcast_to keep the old refusal (PyTorch's reshape
may copy; an expanded view repeats elements): an in-place change of such a view whose
root is alive raises, and reading it after its root changed in place raises.
A view whose root has gone is an ordinary tensor: nothing can tell the difference.

Every tensor's `_view` is None until a view op (the op table's VIEWS) involves it; then
it holds one `State`: the root's weak reference and the chain for a view, the views' for
a root."""

from __future__ import annotations

import weakref

import numpy as np
from remotegrad.proto import catalog

from ._errors import RemotegradError

WRITABLE = frozenset(("index", "narrow", "squeeze", "unsqueeze", "transpose", "permute",
                      "split", "chunk"))
_REPLAYING = [False]  # a refresh's own view ops are not new views


class State:
    __slots__ = ("root", "views", "stale", "chain", "multi", "broken")

    def __init__(self, root=None, chain: tuple = (), multi: bool = False) -> None:
        self.root = root          # weakref to the viewed tensor (a view), else None
        self.views: list = []     # weakrefs to this tensor's views (a root)
        self.stale = False        # its root changed in place and it is not refreshed yet
        self.chain = chain        # the view ops (op, full attrs) from the root
        self.multi = multi        # a piece of split/chunk is in the chain
        self.broken = False       # refreshed without history: PyTorch's autograd refuses it


class ViewWriteError(RemotegradError, NotImplementedError):
    """A change that PyTorch would share between a view and its tensor."""


def _live_root(t):
    state = t._view
    if state is not None and state.root is not None:
        return state.root()
    return None


def _writable(chain: tuple | None) -> bool:
    """None: the root changed other than element by element (unreplayable)."""
    return chain is not None and all(op in WRITABLE for op, _ in chain)


def track(base, view) -> None:
    """`view` was made by a view op from `base`."""
    if _REPLAYING[0]:
        return
    root = _live_root(base)
    chain = base._view.chain if root is not None else ()
    if chain is None:  # a view of an unreplayable view stays one
        chain = (("unreplayable", {}),)
    multi = root is not None and base._view.multi
    if root is None:
        root = base
    if root._view is None or root._view.root is not None:
        root._view = State()  # a root (a view whose own root has gone becomes one)
    views = root._view.views
    if len(views) > 16:
        views[:] = [r for r in views if r() is not None]
    views.append(weakref.ref(view))
    node = view._node
    view._view = State(weakref.ref(root), chain + ((node.op, node.attrs),),
                       multi or node.op in ("split", "chunk"))
    view._vc[0] = root._vc[0]  # PyTorch's view shares its base's version counter


def check_write(t) -> None:
    """Before `t` changes in place other than through write_through."""
    if _live_root(t) is not None:
        raise ViewWriteError(
            "an in-place operation on a view (x[1:].add_(y), x.t().mul_(2), "
            "x.view(-1).zero_()) would change the tensor it views in PyTorch; remotegrad's "
            "views write through only for chains of basic indexing, narrow, squeeze, "
            "unsqueeze, transpose, permute, split and chunk: reshape/view/flatten/expand "
            "views do not share memory, so the viewed tensor would silently keep its old "
            "value. Write through the tensor itself (x[1:] = x[1:] + y), or make the view "
            "an independent tensor first with .clone()")


def writes_through(t) -> bool:
    """An in-place change of `t` goes to its root (write_through)."""
    if t._view is None or _live_root(t) is None:
        return False
    if not _writable(t._view.chain):
        check_write(t)
    if _multi(t):
        raise RuntimeError(
            f"{_output_of(t)} is a view and is being modified inplace. This view is the "
            "output of a function that returns multiple views. Such functions do not allow "
            "the output views to be modified inplace. You should replace the inplace "
            "operation by an out-of-place one.")
    return True


def _multi(t) -> bool:
    """PyTorch's autograd refuses to change (or to differentiate after its base changed)
    a view from a function of several views (split, chunk, unbind: a piece's history
    cannot be rewritten alone) while it requires grad."""
    from ._grad_mode import is_grad_enabled
    fn = t.grad_fn
    return fn is not None and is_grad_enabled() and (
        t._view.multi or type(fn).__name__ == "UnbindBackward0")


def _output_of(t) -> str:
    """PyTorch's "Output <n> of <Function>" for view t."""
    name = type(t.grad_fn).__name__
    op, attrs = t._view.chain[-1]
    n = attrs.get("index", 0) if op in ("split", "chunk") else 0
    if name == "UnbindBackward0":
        n = int(attrs["key"].split(",")[-1])
    return f"Output {n} of {name.removesuffix('Backward0')}"


def positions(t) -> np.ndarray:
    """The root's flat element numbers of view `t`'s elements, as the chain picks them."""
    root = _live_root(t)
    array = np.arange(root.numel(), dtype=np.int64).reshape(tuple(root.shape))
    for op, attrs in t._view.chain:
        array = catalog.get(op).forward(np, array, **attrs)
    return np.asarray(array)


def write_through(t, value) -> None:
    """View `t` takes `value` (a tensor of its shape and dtype, with its history) by its
    root's indexed assignment: PyTorch's CopySlices on the root, then `t` (and the root's
    other views) refreshed from the root's new value."""
    root = _live_root(t)
    where = positions(t)
    # integer arrays index as int64 tensors do (and need no import of the tensor class)
    key = tuple(np.asarray(i, dtype=np.int64)
                for i in np.unravel_index(where, tuple(root.shape)))
    root[key] = value  # setitem: root's _set_node marks its views stale, then refreshes


def check_read(t, operand: bool = False) -> None:
    """Before `t`'s value is read (`operand`: as an op's operand)."""
    state = t._view
    if state.stale:
        root = _live_root(t)
        if root is None or not _writable(state.chain):
            raise ViewWriteError(
                "this view was made before the tensor it views was changed in place: in "
                "PyTorch it shows the change, and remotegrad's reshape/view/flatten/expand "
                "views do not share memory, so it would silently show the old value. Take "
                "the view again after the change, or take it from a .clone() if the old "
                "value is what you want")
        _refresh(t, root)
    if state.broken and operand:
        from ._grad_mode import is_grad_enabled
        if is_grad_enabled():
            raise RuntimeError(
                f"{state.broken} is a view and its base or another view of its base has "
                "been modified inplace. This view is the output of a function that returns "
                "multiple views. Such functions do not allow the output views to be "
                "modified inplace. You should replace the inplace operation by an "
                "out-of-place one.")


# _tensor_base's apply and _overwritten, handed over by it when it loads (connect): it
# imports this module, so importing it back here would close a circle.
_RECORDING: tuple = ()


def connect(apply, overwritten) -> None:
    global _RECORDING
    _RECORDING = (apply, overwritten)


def _refresh(v, root) -> None:
    """View `v` takes its chain re-applied to its root's current value."""
    from ._function import function_class
    from ._grad_mode import set_grad_enabled
    apply, _overwritten = _RECORDING
    state = v._view
    state.stale = False
    if not state.broken and _multi(v):
        state.broken = _output_of(v)  # its value follows; its history is refused
    _REPLAYING[0] = True
    try:
        with set_grad_enabled(not v._no_grad_view and not state.broken):
            out = root
            for op, attrs in state.chain:
                out = apply(op, out, **attrs)
    finally:
        _REPLAYING[0] = False
    fn = v.grad_fn if state.broken else out.grad_fn
    if fn is not None and not state.broken and fn is not root.grad_fn:
        # PyTorch regenerates a view whose base changed as one as_strided of the base
        fn.__class__ = function_class("AsStridedBackward0")
        v._vc[1] = "AsStridedBackward0"
    v._node = out._node
    v.grad_fn = fn
    v._vc[0] = root._vc[0]
    for ref in v._alias or ():
        other = ref()
        if other is not None and other is not v:
            other._node = _overwritten(other, out._node)


def written(t) -> None:
    """`t` changed in place: its live views are stale (refreshed when next read)."""
    for ref in t._view.views:
        v = ref()
        if v is not None and v is not t:
            v._view.stale = True


def _roots(t) -> list:
    """t and its aliases that are roots of views."""
    found = []
    for ref in t._alias or (weakref.ref(t),):
        root = ref()
        state = root._view if root is not None else None
        if state is not None and state.root is None:
            found.append(root)
    return found


def unreplayable(t) -> None:
    """`t` changed shape in place (t_(), squeeze_()) or took another's storage (set_()):
    its views, and its aliases', cannot be replayed from it; reading one is refused."""
    for root in _roots(t):
        for vref in root._view.views:
            v = vref()
            if v is not None and v is not root and v._view.stale:
                v._view.chain = None


def settled(t) -> None:
    """`t`'s in-place change is complete (its grad_fn set): refresh the views of it and
    of its aliases now, while they are alive (a stale view whose root has gone could not
    be refreshed later)."""
    for root in _roots(t):
        for vref in root._view.views:
            v = vref()
            if v is not None and v is not root and v._view.stale \
                    and _writable(v._view.chain):
                _refresh(v, root)
