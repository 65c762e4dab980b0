"""Views, guarded: PyTorch's views share memory with the tensor they view, remotegrad's
do not (the SDK tracks no strides: a view op records a new value, as any op does).

Without a guard the difference is silent: after `v = x[1:]; v.add_(1)` PyTorch's x has
changed and remotegrad's has not, and after `x.mul_(2)` PyTorch's v has and remotegrad's
has not. Until views write through, both are refused at the point where they would give a
different answer:
- an in-place change of a view whose viewed tensor (its root: views of views count from
  the first) is still alive raises, before anything changes;
- an in-place change of a viewed tensor marks its live views stale, and reading a stale
  view (its value, or as an operand) raises.
A view whose root has gone is an ordinary tensor: nothing can tell the difference.

Every tensor's `_view` is None until a view op (the op table's VIEWS) involves it; then
it holds one `State`: the root's weak reference for a view, the views' for a root."""

from __future__ import annotations

import weakref

from ._errors import RemotegradError


class State:
    __slots__ = ("root", "views", "stale")

    def __init__(self, root=None) -> None:
        self.root = root          # weakref to the viewed tensor (a view), else None
        self.views: list = []     # weakrefs to this tensor's views (a root)
        self.stale = False        # its root changed in place after it was made


class ViewWriteError(RemotegradError, NotImplementedError):
    """A change that PyTorch would share between a view and its tensor."""


def _root_of(base):
    state = base._view
    if state is not None and state.root is not None:
        root = state.root()
        if root is not None:
            return root
    return base


def track(base, view) -> None:
    """`view` was made by a view op from `base`."""
    root = _root_of(base)
    if root._view is None or root._view.root is not None:
        root._view = State()  # a root (a view whose own root has gone becomes one)
    views = root._view.views
    if len(views) > 16:
        views[:] = [r for r in views if r() is not None]
    views.append(weakref.ref(view))
    view._view = State(weakref.ref(root))


def check_write(t) -> None:
    """Before `t` changes in place."""
    state = t._view
    if state.root is not None and state.root() is not None:
        raise ViewWriteError(
            "an in-place operation on a view (x[1:].add_(y), x.t().mul_(2), "
            "x.view(-1).zero_()) would change the tensor it views in PyTorch; remotegrad's "
            "views do not share memory yet, so the viewed tensor would silently keep its old "
            "value. Write through the tensor itself (x[1:] = x[1:] + y), or make the view "
            "an independent tensor first with .clone()")


def check_read(t) -> None:
    if t._view.stale:
        raise ViewWriteError(
            "this view was made before the tensor it views was changed in place: in PyTorch "
            "it shows the change, and remotegrad's views do not share memory yet, so it "
            "would silently show the old value. Take the view again after the change, or "
            "take it from a .clone() if the old value is what you want")


def written(t) -> None:
    """`t` changed in place: its live views are stale."""
    for ref in t._view.views:
        v = ref()
        if v is not None and v is not t:
            v._view.stale = True
