"""Nested containers of tensors (tuples, lists, dicts), flattened to a list of leaves and
rebuilt from one: the argument and result shapes torch.func accepts. The spec prints as
PyTorch's TreeSpec does, so that structure errors read the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Spec:
    """The structure of a tree: a container type with keys and child specs, or a leaf."""

    __slots__ = ("children", "context", "kind")

    def __init__(self, kind: type | None, context: Any = None,
                 children: tuple[Spec, ...] = ()) -> None:
        self.kind, self.context, self.children = kind, context, children

    @property
    def is_leaf(self) -> bool:
        return self.kind is None

    @property
    def num_leaves(self) -> int:
        return 1 if self.is_leaf else sum(c.num_leaves for c in self.children)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Spec) and self.kind is other.kind
                and self.context == other.context and self.children == other.children)

    def __hash__(self) -> int:
        return hash((self.kind, len(self.children)))

    def __repr__(self, indent: int = 0) -> str:
        if self.is_leaf:
            return "*"
        indent += 2
        parts = [c.__repr__(indent) for c in self.children]
        inner = (",\n" + " " * indent).join(parts)
        return f"TreeSpec({self.kind.__name__}, {self.context}, [{inner}])"


    def pprint(self) -> str:
        """The short form PyTorch's treespec_pprint gives: (*,), [*, *], {'a': *}."""
        if self.is_leaf:
            return "*"
        parts = [c.pprint() for c in self.children]
        if issubclass(self.kind, dict):
            return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(self.context, parts)) + "}"
        if issubclass(self.kind, list):
            return "[" + ", ".join(parts) + "]"
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


LEAF = Spec(None)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def flatten(tree: Any) -> tuple[list, Spec]:
    """The leaves of `tree` in order (dicts in their insertion order), and its spec."""
    leaves: list = []

    def go(x: Any) -> Spec:
        if isinstance(x, dict):
            keys = list(x)
            return Spec(type(x), keys, tuple(go(x[k]) for k in keys))
        if isinstance(x, (tuple, list)):
            context = list(type(x)._fields) if _is_namedtuple(x) else None
            return Spec(type(x), context, tuple(go(v) for v in x))
        leaves.append(x)
        return LEAF

    return leaves, go(tree)


def unflatten(leaves: list, spec: Spec) -> Any:
    """The tree of `spec`'s structure with these leaves."""
    it = iter(leaves)

    def go(s: Spec) -> Any:
        if s.is_leaf:
            return next(it)
        values = [go(c) for c in s.children]
        if issubclass(s.kind, dict):
            return s.kind(zip(s.context, values))
        if s.context is not None:  # a namedtuple
            return s.kind(*values)
        return s.kind(values)

    return go(spec)


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    leaves, spec = flatten(tree)
    return unflatten([fn(x) for x in leaves], spec)


def broadcast_prefix(prefix: Any, tree: Any, is_leaf: Callable[[Any], bool]) -> list | None:
    """`prefix` (a tree whose leaves stand for whole subtrees of `tree`) spread over
    tree's leaves, one value per leaf; None when prefix is not a prefix of tree."""
    out: list = []

    def go(p: Any, t: Any) -> bool:
        if is_leaf(p):
            out.extend([p] * flatten(t)[1].num_leaves)
            return True
        if isinstance(p, dict) and isinstance(t, dict):
            if set(p) != set(t):
                return False
            return all(go(p[k], t[k]) for k in t)
        if isinstance(p, (tuple, list)) and isinstance(t, (tuple, list)):
            if type(p) is not type(t) and not (isinstance(p, tuple) and isinstance(t, tuple)):
                return False
            return len(p) == len(t) and all(go(a, b) for a, b in zip(p, t))
        return False

    return out if go(prefix, tree) else None
