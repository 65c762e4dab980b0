"""Views whose history PyTorch may refuse (issue 12): a view made under no_grad, or a piece
of split/chunk/unbind, whose base (or another view of it) then changed in place. PyTorch
raises on reading its grad_fn or is_leaf, shows `grad_fn=<Invalid>`, and refuses any op
that would record it with grad mode on (_views.refusal says when).

`grad_fn` is a plain slot of every tensor (read on every op recorded), so only such views
pay for a check: _views._created moves one into a subclass of its class whose grad_fn and
is_leaf are properties over that slot. remotegrad's own code reads the slot as it is (its
reads are not a user's: PyTorch's internals do not call the refusing getter there either,
and where they do, _views.check_history is called explicitly)."""

from __future__ import annotations

import sys

from ._format import tensor_repr

REFUSING: dict = {}  # a tensor class -> its refusing subclass


def _internal(frame) -> bool:
    return frame.f_globals.get("__name__", "").startswith("remotegrad.")


def refusing(cls, refusal, check_history) -> type:
    """cls's subclass whose grad_fn/is_leaf raise PyTorch's refusal (made once; the
    checks are _views's, handed over: it imports this module)."""
    slot = next(k.__dict__["grad_fn"] for k in cls.__mro__ if "grad_fn" in k.__dict__)

    def _get(self):
        fn = slot.__get__(self)
        if not _internal(sys._getframe(1)):
            msg = refusal(self)
            if msg:
                raise RuntimeError(msg)
        return fn

    def _set(self, fn) -> None:
        slot.__set__(self, fn)

    def _leaf(self) -> bool:
        if not _internal(sys._getframe(1)):
            check_history(self)
        return slot.__get__(self) is None

    def _repr(self, *, tensor_contents=None) -> str:
        if refusal(self) is None:
            return cls.__repr__(self)
        return tensor_repr(self._value(), dtype=self._node.meta.dtype,
                           suffixes=["grad_fn=<Invalid>"])

    def _reduce(self, protocol):
        fn, args = cls.__reduce_ex__(self, protocol)
        return fn, (cls,) + tuple(args[1:]) if args and args[0] is type(self) else args

    sub = type(cls.__name__, (cls,), {
        "__slots__": (), "__module__": cls.__module__, "__qualname__": cls.__qualname__,
        "grad_fn": property(_get, _set), "is_leaf": property(_leaf),
        "__repr__": _repr, "__str__": _repr, "__reduce_ex__": _reduce})
    REFUSING[cls] = sub
    return sub
