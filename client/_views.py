"""Views write through, as PyTorch's: remotegrad's views do not share memory with the
tensor they view (the worker lays every value out contiguously: a view op records a new
value, as any op does), so sharing is replayed on the client from each view's strides.
Every view keeps PyTorch's geometry (storage offset, sizes, strides: _strides.py) over
the elements of its root (the tensor the first view of a chain was taken from; a root is
contiguous until t_()/transpose_()/squeeze_()/unsqueeze_() change its own geometry), so
one mechanism serves every view op (basic indexing, narrow, squeeze, unsqueeze,
transpose, permute, split/chunk, diagonal, reshape/view/flatten/unflatten where PyTorch's would not
copy, expand):
- a view's elements are the root's elements at the storage positions offset + sum(i*stride);
- an in-place change of a view becomes the root's `root[positions] = view` (PyTorch's
  CopySlices; refused as PyTorch's where the view repeats an element: expand);
- an in-place change of a root (or of one of its aliases) refreshes its live views by
  gathering their positions from its new value (PyTorch's AsStridedBackward0).
A root is kept alive by its views, as PyTorch's `_base` is, where that can show (_register).
An op recorded under a grad_fn name of no view op (a composite's last reshape named
RollBackward0) makes no view.

Every tensor's `_view` is None until a view op (the op table's VIEWS) involves it or it
changes shape in place; then it holds one `State`: the geometry, plus the root's weak
reference and the chain for a view, the views' for a root."""

from __future__ import annotations

import weakref

import numpy as np

from remotegrad.proto.catalog import FLOATING as _FLOATING

from ._refusing import REFUSING as _REFUSING, refusing as _refusing
from . import _strides
from ._errors import RemotegradError

_REPLAYING = [False]  # a refresh's or a write's own view ops are not new views
_WRITING = [False]    # a write through a view is changing its root
OVERLAP = ("unsupported operation: more than one element of the written-to tensor refers "
           "to a single memory location. Please clone() the tensor before performing the "
           "operation.")


# The CopySlices of a change through a view or onto a root that repeats elements (a fill
# through an expanded view): PyTorch's backward copies the gradient's slice through that
# view and refuses with OVERLAP (checked by _autograd._check_graph).
REPEATING: weakref.WeakSet = weakref.WeakSet()


class State:
    __slots__ = ("root", "keep", "views", "stale", "chain", "multi", "broken", "geom",
                 "reshaping", "shared", "over", "detached", "prune_at", "meta", "born")

    def __init__(self, root=None, chain: tuple = (), multi: bool = False,
                 geom: tuple | None = None) -> None:
        self.root = root          # weakref to the viewed tensor (a view), else None
        self.keep = None          # the root itself, where a view keeps it (_register)
        self.shared = False       # a root with two views or more: they keep it alive
        self.views: list = []     # weakrefs to this tensor's views (a root)
        self.prune_at = 16        # views' length at which the dead ones are dropped
        self.stale = False        # its root changed in place and it is not refreshed yet
        self.chain = chain        # the view ops (op, full attrs) from the root
        self.multi = multi        # a piece of split/chunk is in the chain
        self.broken = False       # refreshed without history (its history is refused)
        self.meta = None          # PyTorch's CreationMeta other than DEFAULT: "no_grad" (made
        #                           under no_grad), "multi" (a split/chunk/unbind piece made
        #                           with grad on), or inherited from the view it was made of
        self.born = 0             # the root's version when this view was made
        self.geom = geom          # (offset, sizes, strides); None: contiguous
        self.reshaping = False    # changing shape in place (t_()): no write to the root
        self.over = None          # the root's geometry when this view was made
        self.detached = False     # a detach() of a view: its root's elements without
        #                           the root's history; the root of its own views


class ViewWriteError(RemotegradError, NotImplementedError):
    """A change that PyTorch would share between a view and its tensor, and that
    remotegrad cannot replay (a view whose tensor changed, then went before the view
    was refreshed)."""


def geometry(t) -> tuple:
    """t's (storage offset, sizes, strides), as PyTorch's."""
    state = t._view
    shape = tuple(t._node.meta.shape)
    if state is not None and state.geom is not None and state.geom[1] == shape:
        return state.geom
    return _strides.contiguous(shape)


def _live_root(t):
    state = t._view
    if state is not None and state.root is not None:
        return state.root()
    return None


# PyTorch's grad_fn names of view ops: an op recorded under another name (a composite's
# last reshape named RollBackward0, kron's UnsafeViewBackward0) makes no view in PyTorch.
VIEW_NAMES = frozenset((
    "ViewBackward0", "ReshapeAliasBackward0", "AliasBackward0", "SelectBackward0",
    "SliceBackward0", "UnsqueezeBackward0", "SqueezeBackward0", "SqueezeBackward1",
    "SqueezeBackward2", "TBackward0", "TransposeBackward0", "PermuteBackward0",
    "ExpandBackward0", "SplitBackward0", "SplitWithSizesBackward0", "UnbindBackward0",
    "AsStridedBackward0", "DiagonalBackward0",
    # the in-place overloads (transpose_, unsqueeze_, squeeze_: no dim, one, several)
    "TransposeBackward1", "UnsqueezeBackward1", "SqueezeBackward3", "SqueezeBackward4",
    "SqueezeBackward5"))


def track(base, view, name: str | None = None, step: tuple | None = None) -> None:
    """`view` was made by a view op from `base`, recorded under grad_fn `name` (None: the
    op's own): a view unless PyTorch's op is none there (another name) or would copy (an
    internal reshape of a layout no view can take). `step`: the view op (op, attrs) where
    view's node is not it (diagonal, composed of ops that are no view of base alone)."""
    if _REPLAYING[0] or (name is not None and name not in VIEW_NAMES):
        return
    node = view._node
    op, attrs = step or (node.op, node.attrs)
    geom = _strides.after(op, attrs, geometry(base), tuple(node.meta.shape))
    if geom is None:
        return
    root = _live_root(base)
    if root is not None and base._view.detached:
        root = None  # a detached view is its views' base (their CopySlices is its own)
    chain = base._view.chain if root is not None else ()
    multi = root is not None and base._view.multi
    if root is None:
        root = base
    if root._view is None or (root._view.root is not None and not root._view.detached):
        # a root (a view whose own root has gone becomes one, with its strides)
        root._view = State(geom=root._view.geom if root._view is not None else None)
    inherited = base._view.meta if chain else None
    view._view = State(weakref.ref(root), chain + ((op, attrs),),
                       multi or op in ("split", "chunk"), geom)
    view._view.over = geometry(root)
    _register(root, view)
    view._vc[0] = root._vc[0]  # PyTorch's view shares its base's version counter
    _created(view, _creation(op, name) or inherited, root._vc[0])


def _creation(op: str, name: str | None) -> str | None:
    """PyTorch's CreationMeta of a view made now by `op` (None: DEFAULT)."""
    from ._grad_mode import is_grad_enabled
    if not is_grad_enabled():
        return "no_grad"
    if op in ("split", "chunk") or name == "UnbindBackward0":
        return "multi"
    return None


def _created(view, meta: str | None, version: int) -> None:
    """`view` has PyTorch's CreationMeta `meta`: once its base or a view of it changes in
    place, its history is refused (grad_fn, is_leaf, use with grad mode on: refusal),
    where it has any (PyTorch's rule: its grad_fn, or a base that requires grad)."""
    state = view._view
    state.meta, state.born = meta, version
    if meta is not None and view._node.meta.dtype in _FLOATING:
        cls = type(view)
        view.__class__ = _REFUSING.get(cls) or _refusing(cls, refusal, check_history)


def refusal(t, direct: bool = False) -> str | None:
    """PyTorch's handle_view_on_rebase for view `t` (None: nothing refused): `direct`, an
    in-place change of t that autograd records; otherwise t's history after its base or
    another view of it changed in place."""
    state = t._view
    if state is None or state.meta is None or state.detached or state.root is None:
        return None
    root = state.root()
    fn = t.grad_fn
    if not direct:
        if fn is None and not (root is not None and root.requires_grad):
            return None
        if (root._vc[0] if root is not None else t._vc[0]) == state.born:
            return None
    what = ("is being" if direct else "its base or another view of its base has been")
    if state.meta == "multi" and fn is not None:
        msg = f"{_output_of(t)} is a view and {what} modified inplace."
    else:
        prefix = ("A view was created in" if fn is None else
                  f"{_output_of(t)} is a view of a view which was created in")
        msg = f"{prefix} no_grad mode and {what} modified inplace with grad mode enabled."
    if state.meta == "multi":
        return msg + MULTI_SUFFIX
    return msg + NO_GRAD_SUFFIX


MULTI_SUFFIX = (" This view is the output of a function that returns multiple views. Such "
                "functions do not allow the output views to be modified inplace. You should "
                "replace the inplace operation by an out-of-place one.")
NO_GRAD_SUFFIX = (" Given that this use case is ambiguous and error-prone, it is forbidden. "
                  "You can clarify your code by moving both the view and the inplace either "
                  "both inside the no_grad block (if you don't want the inplace to be "
                  "tracked) or both outside (if you want the inplace to be tracked).")


def check_history(t) -> None:
    """t's history is about to be read (an op recorded over it, autograd over it)."""
    if t._view is not None and t._view.meta is not None:
        msg = refusal(t)
        if msg:
            raise RuntimeError(msg)


def detach_view(t, out) -> bool:
    """`out` is t.detach() of view `t`: in PyTorch a view of the same storage (same
    strides, writes through both ways, the version counter shared) with no history of
    its base's. False where t's root has gone (out is then an alias of t)."""
    root = _live_root(t)
    if root is None:
        return False
    mine = t._view
    out._view = State(weakref.ref(root), mine.chain, mine.multi, mine.geom)
    out._view.over, out._view.stale, out._view.detached = mine.over, mine.stale, True
    _register(root, out)
    out._vc = t._vc
    return True


def leaf_view(t) -> bool:
    """`t` is a view (with its base's history) of a leaf that requires grad: PyTorch
    refuses its in-place change with grad enabled."""
    root = _live_root(t)
    return root is not None and not t._view.detached and root.grad_fn is None \
        and root._requires_grad


def _register(root, view) -> None:
    """`view` joins root's views. It keeps the root alive, as PyTorch's `_base`, where
    that can show: the root has a history (a change through the view is its CopySlices,
    the view's AsStridedBackward0) or other views (which share the view's elements). A
    temporary's one view without history is left alone: nothing could tell it from an
    ordinary tensor, and an optimiser's steps on it stay plain in-place changes."""
    state = root._view
    views = state.views
    if len(views) > state.prune_at:  # amortised: twice the survivors (many live views)
        views[:] = [r for r in views if r() is not None]
        state.prune_at = max(16, 2 * len(views))
    views.append(weakref.ref(view))
    # (a detached view, or an alias of another tensor, is no temporary: its elements are
    # another tensor's, which a change through the view reaches)
    if not state.shared and not root.requires_grad and not state.detached \
            and not root._alias:
        live = list(_live_views(root))
        if len(live) < 2:
            return
        state.shared = True
        for v in live:
            v._view.keep = root
    view._view.keep = root


def _live_views(root):
    """root's views that are alive and still its (set_ takes a view away)."""
    for ref in root._view.views:
        v = ref()
        if v is not None and v is not root and v._view is not None \
                and v._view.root is not None and v._view.root() is root:
            yield v


def writes_through(t, fill: bool = False, inputs: tuple = ()) -> bool:
    """An in-place change of `t` goes to its root (write_through). `fill`: a fill with a
    number (fill_, zero_), which PyTorch allows on a tensor that repeats an element;
    `inputs`: the nodes the change reads (PyTorch refuses one that partly overlaps t)."""
    if t._view is None:
        return False
    live = _live_root(t) is not None
    if inputs:
        _check_inputs(t, inputs)
    if live and _multi(t):  # autograd's refusal comes before the kernel's
        raise RuntimeError(
            f"{_output_of(t)} is a view and is being modified inplace. This view is the "
            "output of a function that returns multiple views. Such functions do not allow "
            "the output views to be modified inplace. You should replace the inplace "
            "operation by an out-of-place one.")
    if not fill and not _WRITING[0] and PICK[0] is None and _strides.overlaps(geometry(t)):
        raise RuntimeError(OVERLAP)
    return live


def same_data(t, src) -> bool:
    """t.copy_(src) where src is t's own elements in t's order (PyTorch's copy_ then
    writes nothing, so an expanded t does not refuse it: x.expand(2, 3)[...] = x, whose
    value setitem expands first)."""
    if t._view is None or src is t or getattr(src, "_view", None) is None:
        return False
    root = _live_root(t) if t._view.root is not None else t
    other = _live_root(src) if src._view.root is not None else src
    return root is not None and other is root and geometry(src) == geometry(t)


PARTIAL = ("unsupported operation: some elements of the input tensor and the written-to "
           "tensor refer to a single memory location. Please clone() the tensor before "
           "performing the operation.")


def check_operands(t, operands: tuple) -> None:
    """Before an in-place op of t computes: PyTorch checks its inputs' overlap with t
    before their shapes (c.t().add_(c) of a 2 x 3 c is a partial overlap, not a size
    mismatch)."""
    nodes = tuple(x._node for x in operands if hasattr(x, "_node"))
    if nodes:
        _check_inputs(t, nodes)


def _check_inputs(t, inputs: tuple) -> None:
    """PyTorch's assert_no_partial_overlap between t and each input that is t's root or
    another of its views (known by node)."""
    root = _live_root(t) if t._view.root is not None else t
    if root is None:
        return
    known = {id(v._node): v for v in _live_views(root) if v is not t}
    if root is not t:
        known[id(root._node)] = root
    if not known:  # a root without live views (a parameter's update): nothing to meet
        return
    mine = geometry(t)
    for node in inputs:
        other = known.get(id(node))
        if other is not None and _strides.partial(mine, geometry(other)):
            raise RuntimeError(PARTIAL)


def _multi(t) -> bool:
    """PyTorch's autograd refuses to change (or to differentiate after its base changed)
    a view from a function of several views (split, chunk, unbind: a piece's history
    cannot be rewritten alone) while it requires grad."""
    from ._grad_mode import is_grad_enabled
    fn = t.grad_fn
    return fn is not None and is_grad_enabled() and not t._view.detached and (
        t._view.multi or type(fn).__name__ == "UnbindBackward0")


def _output_of(t) -> str:
    """PyTorch's "Output <n> of <Function>" for view t."""
    name = type(t.grad_fn).__name__
    op, attrs = t._view.chain[-1]
    n = attrs.get("index", 0) if op in ("split", "chunk") else 0
    if name == "UnbindBackward0":
        n = int(attrs["key"].split(",")[-1])
    return f"Output {n} of {name.removesuffix('Backward0')}"


def _inverse(geom: tuple, top: int) -> np.ndarray:
    """For each storage position below `top`, a root element there (-1: none); a root
    that repeats elements holds the same value in each, so any one of them serves."""
    mine = _strides.positions(geom).ravel()
    top = max(top, int(mine.max(initial=-1)) + 1)
    inverse = np.full(top, -1, dtype=np.int64)
    inverse[mine] = np.arange(mine.size, dtype=np.int64)
    return inverse


def positions(t, root) -> np.ndarray:
    """The root's flat element numbers of view `t`'s elements (an array of t's shape):
    t's storage positions, through the inverse of the root's own."""
    where = _strides.positions(geometry(t))
    geom = geometry(root)
    if geom == _strides.contiguous(geom[1]):
        return where
    return _inverse(geom, int(where.max(initial=-1)) + 1)[where]


def _key(where: np.ndarray, root) -> tuple:
    # integer arrays index as int64 tensors do (and need no import of the tensor class)
    return tuple(np.asarray(i, dtype=np.int64)
                 for i in np.unravel_index(where, tuple(root.shape)))


def _reached(t, root) -> tuple[np.ndarray, np.ndarray]:
    """A root that repeats elements (an expanded view whose own root has gone): the
    root's elements that share a storage position with one of view t's, and for each
    the element of t there (flat numbers)."""
    where = _strides.positions(geometry(t)).ravel()
    mine = _strides.positions(geometry(root)).ravel()
    top = max(int(where.max(initial=-1)), int(mine.max(initial=-1))) + 1
    order = np.full(top, -1, dtype=np.int64)
    order[where] = np.arange(where.size, dtype=np.int64)
    pick = order[mine]
    hit = np.flatnonzero(pick >= 0)
    return hit, pick[hit]


# setitem's mask (numpy, flat) while an index_put_ writes into a tensor that repeats
# elements: the element written at each memory location (_picked)
PICK: list = [None]


def _picked(where: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each storage position once (sorted), with the view element written there: the last
    one `mask` sets, else the last one."""
    n = where.size
    order = np.lexsort((mask.astype(np.int64) * n + np.arange(n), where))
    top, starts = np.unique(where[order], return_index=True)
    ends = np.append(starts[1:], n) - 1
    return top, order[ends]


def write_through(t, value) -> None:
    """View `t` takes `value` (a tensor of its shape and dtype, with its history): the
    root's flattened elements at t's positions take it, by one scatter (PyTorch's
    CopySlices on the root; a scatter writes values, so -0.0 stays -0.0); then `t` and
    the root's other views are refreshed from the root's new value."""
    if t._view.detached:
        _write_detached(t, value)
    else:
        _write(t, value)


def _write(t, value) -> None:
    root = _live_root(t)
    root_repeats, view_repeats = (_strides.overlaps(geometry(root)),
                                  _strides.overlaps(geometry(t)))
    repeats = root_repeats or view_repeats
    if root_repeats:
        where, mine = _reached(t, root)
    else:
        where = positions(t, root).ravel()
        mine = None
        if view_repeats and PICK[0] is not None:  # an index_put_: its last indexed element
            where, mine = _picked(where, PICK[0])
        elif view_repeats:  # a fill: each element once
            where, mine = np.unique(where, return_index=True)
    apply = _RECORDING[0]
    _REPLAYING[0] = True
    try:
        src = apply("reshape", value, shape=(value.numel(),))
        if mine is not None:
            src = apply("index", src, type(root)._from_array(mine), key="T")
        flat = apply("reshape", root, shape=(root.numel(),))
        flat = apply("scatter", flat, type(root)._from_array(where.astype(np.int64)), src,
                     dim=0)
        out = apply("reshape", flat, shape=tuple(root.shape), torch_name="CopySlices")
    finally:
        _REPLAYING[0] = False
    if repeats and out.grad_fn is not None:
        REPEATING.add(out.grad_fn)
    root._check_inplace()
    _WRITING[0] = True  # a root that repeats elements takes the change in each of them
    try:
        root._assign(out)  # its _set_node marks its views stale; settled refreshes them
    finally:
        _WRITING[0] = False


def _write_detached(t, value) -> None:
    """A detached view's change: the root takes the value only, unseen by autograd (it
    keeps its history; a leaf stays a leaf), `t` keeps the op's history where it has one."""
    from ._grad_mode import no_grad
    with no_grad():
        _write(t, value)
    if value.grad_fn is not None:
        t._node, t.grad_fn = value._node, value.grad_fn
        t._vc[1] = type(value.grad_fn).__name__
    _follow(t)


def _follow(t) -> None:
    """Detached view `t` changed: its own views take its new elements."""
    for v in list(_live_views(t)):
        _refresh(v, t)


def check_read(t, operand: bool = False) -> str | None:
    """Before `t`'s value is read (`operand`: as an op's operand): as an operand, PyTorch's
    refusal of t's history, raised by the op if it records its history (apply)."""
    state = t._view
    if state.stale:
        root = _live_root(t)
        if root is None:
            raise ViewWriteError(
                "this view was made before the tensor it views was changed in place, and "
                "that tensor has gone before the view could follow the change. Take the "
                "view again after the change")
        _refresh(t, root)
    if operand and state.meta is not None:
        return refusal(t)
    return None


# _tensor_base's apply and _overwritten, handed over by it when it loads (connect): it
# imports this module, so importing it back here would close a circle.
_RECORDING: tuple = ()


def connect(apply, overwritten) -> None:
    global _RECORDING
    _RECORDING = (apply, overwritten)


# view ops composed on the client, by name (diagonal: _composites registers it; importing
# it here would close a circle)
COMPOSED: dict = {}


def _gather(v, root):
    """v's elements from its root's current value: an index of the root's elements at
    v's positions; where the root has kept the layout it had when v was made, that index
    is v's own chain of view ops over it (the same elements, and no index constants)."""
    apply = _RECORDING[0]
    if geometry(root) == v._view.over:
        out = root
        for op, attrs in v._view.chain:
            out = COMPOSED[op](out, **attrs) if op in COMPOSED else apply(op, out, **attrs)
        return out
    where = positions(v, root)
    if root.dim() == 0:
        root = apply("reshape", root, shape=(1,))
    return root[_key(where, root)]


def _refresh(v, root) -> None:
    """View `v` takes its elements from its root's current value."""
    from ._function import function_class
    from ._grad_mode import set_grad_enabled
    _overwritten = _RECORDING[1]
    state = v._view
    state.stale = False
    if state.detached:  # the root's new elements, none of its history
        with set_grad_enabled(False):
            _REPLAYING[0] = True
            try:
                out = _gather(v, root)
            finally:
                _REPLAYING[0] = False
        v._node = _overwritten(v, out._node)
        v._vc[0] = root._vc[0]
        _follow(v)
        return
    if not state.broken and state.meta is not None and (
            v.grad_fn is not None or root.requires_grad):
        state.broken = True  # its value follows; its history is refused (refusal)
        if v.grad_fn is None:  # PyTorch's view requires grad where its base does
            v._requires_grad = v._no_grad_view = True
    _REPLAYING[0] = True
    try:
        with set_grad_enabled(not v._no_grad_view and not state.broken):
            out = _gather(v, root)
    finally:
        _REPLAYING[0] = False
    fn = v.grad_fn if state.broken else out.grad_fn
    if fn is not None and not state.broken and fn is not root.grad_fn:
        # PyTorch regenerates a view whose base changed as one as_strided of the base
        fn.__class__ = function_class("AsStridedBackward0")
        v._vc[1] = "AsStridedBackward0"
        if 0 in out._node.meta.shape:
            _empty_as_strided(out, fn)
    v._node = out._node
    v.grad_fn = fn
    v._vc[0] = root._vc[0]
    for ref in v._alias or ():
        other = ref()
        if other is not None and other is not v:
            other._node = _overwritten(other, out._node)


def _empty_as_strided(out, fn) -> None:
    """An empty regenerated view: PyTorch's as_strided_backward returns zeros of the
    base's sizes, a constant (a create_graph gradient through it requires no grad), so
    the view's node is replace(its gather, the gather detached): a zero gradient that does
    not depend on the seed, still reaching the base (its gradient is not None)."""
    from ._node import Node
    node = out._node
    out._node = Node("replace", (node, Node("detach", (node,), {}, node.meta)), {},
                     node.meta, tracked=True)
    _EMPTY_MARKERS.add(out._node)
    fn.node = out._node


# _empty_as_strided's nodes: by identity, as a user's copy_ of a tensor's own detach()
# (x.copy_(x.detach())) records the same replace(node, detach(node)), whose history an
# in-place op after it must not skip
_EMPTY_MARKERS: weakref.WeakSet = weakref.WeakSet()


def _is_empty_marker(node) -> bool:
    """`node` is one of _empty_as_strided's replace(gather, detach(gather))."""
    return node in _EMPTY_MARKERS


def inplace_input(v) -> None:
    """An in-place op is about to read view `v`. PyTorch's CopySlices hands the op the base's
    gradient at v's elements, never through v's AsStridedBackward0, so an empty regenerated
    view's constant zeros are no part of it: the op reads the gather itself (through its
    saved result, grad * result for exp_, a create_graph gradient still requires grad)."""
    if v._view is not None and _is_empty_marker(v._node):
        v._node = v._node.inputs[0]


def written(t) -> None:
    """`t` changed in place other than through write_through (an alias of it changed,
    nn.init filled it): a view's new value goes to its root now, unseen by autograd as
    the change was; a root's live views are stale (refreshed when next read)."""
    state = t._view
    if state.root is not None:
        root = state.root()
        if state.reshaping:
            state.reshaping = False  # its own geometry changed (reshaped follows)
        elif root is not None:
            from ._grad_mode import no_grad
            with no_grad():
                write_through(t, type(t)(t._node))
        return
    for v in _live_views(t):
        v._view.stale = True


def _roots(t) -> list:
    """t and its aliases that are roots of views."""
    found = []
    for ref in t._alias or (weakref.ref(t),):
        root = ref()
        state = root._view if root is not None else None
        if state is not None and (state.root is None or state.detached):
            found.append(root)
    return found


def reshaping(t) -> None:
    """`t` is about to change shape in place (its elements stay where they are)."""
    if t._view is not None:
        t._view.reshaping = True


def reshaped(t) -> None:
    """`t` changed shape in place (t_(), transpose_(), squeeze_(), unsqueeze_(): its node
    is now that op's): its own geometry follows the op, over the same elements; its views
    (PyTorch's keep their elements) are refreshed from it."""
    node = t._node
    state = t._view
    old = state.geom if state is not None and state.geom is not None else \
        _strides.contiguous(tuple(node.inputs[0].meta.shape))
    geom = _strides.after(node.op, node.attrs, old, tuple(node.meta.shape))
    if state is None:
        state = t._view = State()
    state.geom = geom
    settled(t)


def set_(t) -> None:
    """Before `t` takes another tensor's storage (set_): its views keep its old elements
    (in PyTorch they keep its old storage), now under a root of their own that nothing
    else sees; a view `t` leaves its root."""
    state = t._view
    if state is None:
        return
    if state.root is not None:
        t._view = None
        return
    views = list(_live_views(t))
    t._view = None
    if not views:
        return
    holder = type(t)(t._node)
    holder.grad_fn, holder._requires_grad, holder._vc = t.grad_fn, t._requires_grad, t._vc
    holder._view = state
    state.shared = True
    for v in views:
        v._view.root, v._view.keep = weakref.ref(holder), holder


def settled(t) -> None:
    """`t`'s in-place change is complete (its grad_fn set): refresh the views of it and
    of its aliases now, while they are alive (a stale view whose root has gone could not
    be refreshed later)."""
    for root in _roots(t):
        for v in list(_live_views(root)):
            if v._view.stale:
                _refresh(v, root)
