"""The grad_fn of a gradient made with `create_graph=True`.

PyTorch names such a gradient after the last op of its derivative (`MulBackward0` for
d/dx sum(x * y), `AddBackward0` where two contributions meet), and gives it none at all
when the derivative does not depend on anything that requires grad (d/dx sum(2 * x)).
Here the derivative is the engine's: the `grad` node is lowered with the catalog's rules
(worker/engine/autodiff.py) when the cluster computes it. Its root is fixed by the graph's
structure, so the client lowers the same graph (shapes only, no values) and reads it off:

- the root's op, named as the SDK names that op when a user records it (PyTorch's name,
  which may depend on the operands: `mm` vs `mv`, `pow` of a tensor or of a number);
- whether the root requires grad: it does when it depends, through differentiable ops
  of a floating dtype, on a tensor that requires grad (the rule `apply` follows for
  every op a user records); the tensors it so depends on are its next functions, so a
  later gradient through it reaches what PyTorch's would (and finds unused what the
  derivative does not read).

A `where` whose condition is a constant (a rule's guard for a Python-number argument,
`y == 0` in pow's) selects one branch; PyTorch decides that branch when it builds the
graph (`pow_backward` tests `exponent == 0`), so the branch taken is what is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from remotegrad.proto import catalog
from remotegrad.proto.catalog import FLOATING, Meta, OpError

from ._node import Node
from ._op_table import NO_SAVED_TENSORS
from ._ops import grad_name

if TYPE_CHECKING:
    from ._engine import Graph

_NEEDS_GRAD, _CONSTANT = "g", "c"   # leaf tags: requires grad or not
UNKNOWN = "GradBackward"  # the name where the graph cannot be lowered here


def derivatives(grads: list[Node], needs_grad: list[Node], extra: list[Node] = ()
                ) -> list[tuple[str, list[int], bool] | None]:
    """For each `grad` node: None when the gradient requires no grad, else PyTorch's
    grad_fn name for it, what it is computed from: the positions in `needs_grad` (the
    nodes of the tensors requiring grad in the graph) of those its derivative reads, the
    nearest on each path (its grad_fn's next_functions), and whether PyTorch's nodes for
    the derivative's ops down to those save tensors (a later backward through it without
    retain_graph then fails, as through PyTorch's double-backward graph)."""
    # Deferred (here and in _engine_graph): the worker's engine and _wire's grpc are not
    # part of `import remotegrad`, which the worker's own imports go through.
    from ._engine import lower

    if not grads:
        return []
    try:
        src, ids, marked = _engine_graph(grads, needs_grad, list(extra))
        dst, targets = lower(src, [ids[id(g)] for g in grads] + marked
                             + [ids[id(n)] for n in extra])
    except OpError:  # a graph the engine refuses: it says so when the value is computed
        return [(UNKNOWN, list(range(len(needs_grad))), True)] * len(grads)
    where: dict[int, list[int]] = {}  # lowered node → positions in needs_grad
    for k, n in enumerate(targets[len(grads):len(grads) + len(needs_grad)]):
        where.setdefault(n, []).append(k)
    requires = _requires_grad(dst, set(where))
    out: list[tuple[str, list[int]] | None] = []
    for r in targets[:len(grads)]:
        r = _named_node(dst, r, where)
        out.append((_torch_name(dst, r), *_reads(dst, r, where, requires)) if requires[r]
                   else None)
    return out


def _reads(g: Graph, root: int, where: dict[int, list[int]], requires: list[bool]
           ) -> tuple[list[int], bool]:
    """The tensors requiring grad a node is computed from, through differentiable ops, and
    whether a node on the way (PyTorch's node for its op) saves tensors."""
    found: set[int] = set()
    saves = False
    seen, stack = {root}, [root]
    while stack:
        n = stack.pop()
        if n in where:
            found.update(where[n])
            continue
        saves = saves or _torch_name(g, n) not in NO_SAVED_TENSORS
        for i in g.inputs[n]:
            if requires[i] and i not in seen:
                seen.add(i)
                stack.append(i)
    return sorted(found), saves


def _engine_graph(grads: list[Node], needs_grad: list[Node], extra: list[Node] = ()
                  ) -> tuple[Graph, dict, list]:
    """The client graph as the cluster will see it (see _request), in an engine Graph built as
    the worker builds it (every node checked, attributes completed): a node whose value
    travels travels as a leaf; every leaf is its own node."""
    from ._engine import Graph
    from ._request import travels_as_leaf as _travels_as_leaf

    g = Graph()
    ids: dict[int, int] = {}
    wanted = {id(n) for n in needs_grad}
    # Tensors differentiated against stay apart from their twins, as in the engine's build.
    salts: dict[int, int] = {}
    for n in grads:
        wrt = n.inputs[-1]
        if wrt.op != "leaf" and id(wrt) not in salts:
            salts[id(wrt)] = len(salts)
    # `extra` (views an op saved as its result) last, so first: before the grads' lowering
    order = _inputs_first(grads + needs_grad + list(extra))
    for node in order:  # an overwrite's value too (proto.nodes.distinct_wrts)
        if node.op == "overwrite" and id(node.inputs[1]) not in salts:
            salts[id(node.inputs[1])] = len(salts)
    for node in order:
        if node.op == "leaf" or _travels_as_leaf(node):
            tag = _NEEDS_GRAD if id(node) in wanted else _CONSTANT
            ids[id(node)] = g.add("leaf", (), {"hash": f"{tag}{id(node)}",
                                               "dtype": node.meta.dtype,
                                               "shape": node.meta.shape})
        else:
            ids[id(node)] = g.add(node.op, tuple(ids[id(i)] for i in node.inputs), node.attrs,
                                  salts.get(id(node)))
    return g, ids, [ids[id(n)] for n in needs_grad]


def _inputs_first(roots: list[Node]) -> list[Node]:
    """The nodes the roots depend on, each once, inputs first (the last root's first); a
    node whose value travels travels as a leaf (its inputs are not part of it)."""
    from ._request import travels_as_leaf as _travels_as_leaf

    order: list[Node] = []
    done: set[int] = set()
    stack: list[tuple[Node, bool]] = [(n, False) for n in roots]
    while stack:
        node, ready = stack.pop()
        if id(node) in done:
            continue
        if ready or node.op == "leaf" or _travels_as_leaf(node):
            done.add(id(node))
            order.append(node)
        else:
            stack.append((node, True))
            stack.extend((i, False) for i in node.inputs if id(i) not in done)
    return order


def _requires_grad(g: Graph, marked: set[int]) -> list[bool]:
    out: list[bool] = []
    for n in range(len(g)):
        op = g.ops[n]
        if n in marked or (op == "leaf" and g.attrs[n]["hash"].startswith(_NEEDS_GRAD)):
            out.append(True)
            continue
        opdef = catalog.get(op)
        out.append(opdef.differentiable and g.metas[n].dtype in FLOATING
                   and any(out[i] for i in g.inputs[n]))
    return out


def _named_node(g: Graph, n: int, where: dict[int, list[int]]) -> int:
    """The node a gradient is named after: past clone's casts and constant-guard wheres,
    in whichever order they come (clone().pow_(2): the cast is over pow's guard)."""
    while True:
        m = _past_casts(g, _taken_branch(g, n), where)
        if m == n:
            return n
        n = m


def _taken_branch(g: Graph, n: int) -> int:
    while g.ops[n] == "where":
        cond = _constant_value(g, g.inputs[n][0])
        if cond is None or not (cond.all() or not cond.any()):
            break
        n = g.inputs[n][1] if cond.all() else g.inputs[n][2]
    return n


def _past_casts(g: Graph, n: int, where: dict[int, list[int]]) -> int:
    """Below the casts to the dtype they already have (the cast rule's, for clone): PyTorch's
    CloneBackward0 passes the gradient on as it is, so the op before names the gradient
    (d/dx sum(x.clone().tanh()) is TanhBackwardBackward0). A tensor of the graph itself is
    not looked through to (its own grad_fn is not the derivative's)."""
    while g.ops[n] == "cast":
        below = g.inputs[n][0]
        if (g.metas[below].dtype != g.metas[n].dtype or g.ops[below] == "leaf"
                or below in where):
            break
        n = below
    return n


_SMALL = 1 << 12  # elements: a guard over a Python number is a scalar


def _constant_value(g: Graph, n: int) -> np.ndarray | None:
    """The value of a node that depends on no leaf, when it is small; else None."""
    order = g.needed([n])
    if any(g.ops[i] == "leaf" or g.metas[i].numel > _SMALL for i in order):
        return None
    values: dict[int, object] = {}
    try:
        with np.errstate(all="ignore"):
            for i in order:
                fn = catalog.get(g.ops[i]).forward
                if fn is None:
                    return None
                values[i] = fn(np, *(values[j] for j in g.inputs[i]), **g.attrs[i])
    except Exception:  # noqa: BLE001  (a guard that cannot be evaluated here: keep the where)
        return None
    return np.asarray(values[n])


def _torch_name(g: Graph, n: int) -> str:
    operands = [g.attrs[i]["value"] if g.ops[i] == "const" else _Operand(g.metas[i])
                for i in g.inputs[n]]
    return grad_name(g.ops[n], operands, g.attrs[n])


class _Operand:
    """Stands for a tensor operand where only its kind and shape matter (naming)."""

    __slots__ = ("meta",)

    def __init__(self, meta: Meta) -> None:
        self.meta = meta

    @property
    def ndim(self) -> int:
        return len(self.meta.shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.meta.shape
