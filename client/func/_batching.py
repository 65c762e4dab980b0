"""vmap by the catalog's batching rules: trace once, replay batched.

The function runs ONCE, on the first slice of each mapped input, while a tape records every
op it applies (_tensor_base.apply) and every autograd.grad it takes. The tape is then
replayed over the whole batch: an op that meets no batched input is kept as it was
recorded; one that does is recorded again through its batching rule (OpDef.batch, see
remotegrad.proto.catalog._batching), or, where the rule has none, once per slice and
stacked. The graph is the size of one slice's, each op once over the batch.

Gradients inside vmap (vmap over grad: per-sample gradients). A gradient of batched outputs
with respect to an unbatched tensor w (the parameters, in_dims None) must be one gradient
per slice, not their sum: every such w is expanded to the batch BEFORE the ops that read
it are replayed (each slice then reads its own copy of w, identical in value), and the
gradient is taken at the expanded copy, which gives each slice's gradient in its row. The
tensors to expand are found from the tape before replaying (to a fixed point: expanding
one makes more outputs batched).

What the replay cannot see makes it give up and vmap maps per slice instead, as before
(values the same, a graph B times larger): a value read while tracing (.item(), printing,
data-dependent control flow, which the one trace would have decided for slice 0 alone),
random numbers drawn with randomness='different', any tensor updated in place (the trace
stops at the update, before it changes anything: how an update reaches views and bases is
not on the tape, and a captured tensor would be updated once more than per slice), a
custom autograd.Function over batched values, or any other node built from a slice
without the tape (check_clean walks the result's graph for the traced slices). `STATS`
counts what happened, for tests and benchmarks.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from remotegrad.proto import catalog
from remotegrad.proto.catalog._batching import Site

from .. import _autograd, _creation, _grad_mode, _tensor_base
from .._shape import stack
from .._tensor_base import TensorBase, apply

__all__ = ["ENABLED", "Fallback", "STATS", "Tape", "check_clean", "replay"]

log = logging.getLogger(__name__)

# "batched" / "per_slice": vmap calls each way; "op_per_slice:<op>": ops that had no rule.
STATS: Counter = Counter()
# False: every vmap runs per slice (the peer that benchmarks measure the rules against).
ENABLED = True

# Untaped nodes that carry a batched value on (the others are older than the trace).
_PASS_ON = frozenset({"detach", "overwrite", "replace", "grad"})


class Fallback(Exception):
    """The replay cannot stand for the per-slice runs; map per slice."""


def _versions(tensors) -> list:
    return [(t._vc, t._vc[0]) for t in tensors if isinstance(t, TensorBase)]


class _Op:
    __slots__ = ("grad_mode", "nodes", "op", "operands", "out", "out_node", "torch_name",
                 "versions")

    def __init__(self, op, operands, torch_name, out):
        self.op, self.operands, self.torch_name, self.out = op, operands, torch_name, out
        self.grad_mode = _grad_mode.is_grad_enabled()  # replayed in the same mode
        self.out_node = out._node
        self.nodes = [x._node if isinstance(x, TensorBase) else None for x in operands]
        self.versions = _versions(operands + (out,))


class _Grad:
    __slots__ = ("create_graph", "grad_mode", "inputs", "materialize", "outputs", "results",
                 "seeds", "versions")

    def __init__(self, outputs, inputs, seeds, create_graph, materialize, results):
        self.outputs = [(t, t._node) for t in outputs]
        self.inputs = [(t, t._node) for t in inputs]
        self.seeds = [(s, s._node) if isinstance(s, TensorBase) else (None, None) for s in seeds]
        self.create_graph, self.materialize, self.results = create_graph, materialize, results
        self.grad_mode = _grad_mode.is_grad_enabled()
        self.versions = _versions(list(outputs) + list(inputs) + list(seeds))


_LOCK = threading.Lock()


class Tape:
    """This thread's _tensor_base.TAPES.tape while the function is traced (other threads
    record as usual); apply and autograd.grad hand their calls to it, and it records them
    with itself taken off."""

    def __init__(self) -> None:
        self.entries: list = []

    def __enter__(self) -> Tape:
        self.outer = getattr(_tensor_base.TAPES, "tape", None)
        _tensor_base.TAPES.tape = self
        with _LOCK:
            _tensor_base.TAPING += 1
        return self

    def __exit__(self, *exc) -> None:
        _tensor_base.TAPES.tape = self.outer
        with _LOCK:
            _tensor_base.TAPING -= 1

    def __call__(self, op: str, operands: tuple, torch_name: str | None, attrs: dict):
        _tensor_base.TAPES.tape = None
        try:
            out = apply(op, *operands, torch_name=torch_name, **attrs)
        finally:
            _tensor_base.TAPES.tape = self
        self.entries.append(_Op(op, operands, torch_name, out))
        return out

    def written(self, tensor: TensorBase) -> None:
        """A tensor updated in place while traced (_set_node): the one trace would apply
        the update once, before the per-slice runs apply it again, so it stops here."""
        raise Fallback("a tensor updated in place while traced")

    def grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph, only_inputs,
             allow_unused, is_grads_batched, materialize_grads):
        _tensor_base.TAPES.tape = None
        try:
            results = _autograd.grad(outputs, inputs, grad_outputs, retain_graph,
                                     create_graph, only_inputs, allow_unused,
                                     is_grads_batched, materialize_grads)
        finally:
            _tensor_base.TAPES.tape = self
        outs = _as_list(outputs)
        seeds = [None] * len(outs) if grad_outputs is None else _as_list(grad_outputs)
        if is_grads_batched:
            self.entries.append(None)  # not replayed: the whole vmap maps per slice
        else:
            self.entries.append(_Grad(outs, _as_list(inputs), seeds, create_graph,
                                      materialize_grads, results))
        return results


def _as_list(x) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, TensorBase) else list(x)


def _expand(x: TensorBase, size: int) -> TensorBase:
    return x.unsqueeze(0).expand((size,) + tuple(x.shape))


class _Replay:
    def __init__(self, tape: Tape, slices: dict, size: int) -> None:
        self.tape, self.size = tape, size
        self.env: dict[int, TensorBase] = {k: t for k, (_, t) in slices.items()}
        self.slices = {k for k in slices}
        self.keep = [n for n, _ in slices.values()]  # ids stay valid while replaying
        self.taped = {id(e.out_node): e for e in tape.entries if isinstance(e, _Op)}
        for e in tape.entries:
            if isinstance(e, _Grad):
                self.taped.update({id(r._node): e for r in e.results if r is not None})
        self.expand: set[int] = set()
        for e in tape.entries:
            # An in-place update after the tape saw a tensor: how it reached its aliases
            # (views, bases) is not on the tape, so the replay could miss it.
            if e is not None and any(vc[0] != v for vc, v in e.versions):
                raise Fallback("a tensor was updated in place while traced")
        self._plan()

    # -- which trace nodes carry the batch ------------------------------------------------
    def batched(self, node) -> bool:
        memo, todo = self._memo, [node]
        while todo:
            n = todo[-1]
            k = id(n)
            if k in memo:
                todo.pop()
                continue
            if k in self.slices or k in self.expand:
                memo[k] = True
                todo.pop()
                continue
            if k not in self.taped and n.op not in _PASS_ON:
                memo[k] = False  # older than the trace
                todo.pop()
                continue
            pending = [i for i in n.inputs if id(i) not in memo]
            if pending:
                todo.extend(pending)
                continue
            memo[k] = any(memo[id(i)] for i in n.inputs)
            todo.pop()
        return memo[id(node)]

    def _plan(self) -> None:
        """The unbatched tensors that per-slice gradients are taken at (see the module)."""
        while True:
            self._memo: dict[int, bool] = {}
            more = set()
            for e in self.tape.entries:
                if e is None:
                    raise Fallback("autograd.grad(is_grads_batched=True) inside vmap")
                if not isinstance(e, _Grad):
                    continue
                if any(self.batched(n) for _, n in e.outputs + e.seeds if n is not None):
                    more |= {id(n) for _, n in e.inputs if not self.batched(n)}
            if not more:
                return
            self.expand |= more

    # -- values ---------------------------------------------------------------------------
    def value(self, x: Any, node) -> tuple[Any, bool]:
        """(the replayed value of operand x recorded over `node`, whether it is batched)."""
        if not isinstance(x, TensorBase):
            return x, False
        k = id(node)
        found = self.env.get(k)
        if found is not None:
            return found, True
        if k in self.expand:
            if x._node is not node:
                raise Fallback("a tensor updated in place while traced")
            t = self.env[k] = _expand(x, self.size)
            self.keep.append(node)
            return t, True
        if not self.batched(node):
            if x._node is not node:
                raise Fallback("a tensor updated in place while traced")
            return x, False
        if node.op == "detach" and not node.tracked and len(node.inputs) == 1 and \
                id(node.inputs[0]) in self.env:
            t = self.env[id(node.inputs[0])].detach()  # a transform's stand-in for a slice
            if x._requires_grad and x.grad_fn is None:
                t.requires_grad_(True)
            self.env[k] = t
            self.keep.append(node)
            return t, True
        raise Fallback(f"a node built from a slice without the tape ({node.op})")

    # -- entries --------------------------------------------------------------------------
    def run(self) -> None:
        """Each entry in the grad mode it was recorded in (no_grad inside the function, the
        enable_grad of a grad transform)."""
        prev = mode = _grad_mode.is_grad_enabled()
        try:
            for e in self.tape.entries:
                if e.grad_mode != mode:
                    mode = e.grad_mode
                    _grad_mode._set(mode)
                if isinstance(e, _Op):
                    self._op(e)
                else:
                    self._grad(e)
        finally:
            _grad_mode._set(prev)

    def _op(self, e: _Op) -> None:
        vals = [self.value(x, n) for x, n in zip(e.operands, e.nodes)]
        flags = tuple(b for _, b in vals)
        if not any(flags):
            return
        if e.out_node.value is not None:
            raise Fallback("a value was read while tracing")
        xs = [v for v, _ in vals]
        out = e.out_node
        site = Site(e.op, dict(out.attrs), tuple(i.meta for i in out.inputs), flags, out.meta)
        result = self._by_rule(e, site, xs)
        if result is None:
            STATS[f"op_per_slice:{e.op}"] += 1
            result = self._per_slice(e, site, xs)
        if e.out._requires_grad and e.out.grad_fn is None and not result.requires_grad:
            result.requires_grad_(True)
        self.env[id(out)] = result
        self.keep.append(out)

    def _by_rule(self, e: _Op, site: Site, xs: list) -> TensorBase | None:
        rule = catalog.get(e.op).batch
        plan = rule(site) if rule is not None else None
        if plan is None:
            return None
        try:
            if callable(plan):
                result = plan(apply, xs, self.size)
            else:
                result = apply(e.op, *xs, torch_name=e.torch_name, **plan)
        except (RuntimeError, ValueError, IndexError, TypeError, catalog.OpError) as err:
            log.debug("vmap: %s's batching rule failed (%s); per slice", e.op, err)
            return None
        want = (self.size,) + tuple(site.out.shape)
        if tuple(result.shape) != want or result._node.meta.dtype != site.out.dtype:
            log.debug("vmap: %s's batching rule gave %s %s, not %s %s; per slice", e.op,
                      tuple(result.shape), result._node.meta.dtype, want, site.out.dtype)
            return None
        return result

    def _per_slice(self, e: _Op, site: Site, xs: list) -> TensorBase:
        rows = []
        for b in range(self.size):
            ops = [apply("index", x, key=str(b), torch_name="SelectBackward0") if f else x
                   for x, f in zip(xs, site.batched)]
            rows.append(apply(e.op, *ops, torch_name=e.torch_name, **site.attrs))
        return stack(rows)

    def _grad(self, e: _Grad) -> None:
        outs = [self.value(t, n) for t, n in e.outputs]
        seeds = [self.value(s, n) if s is not None else (None, False) for s, n in e.seeds]
        ins = [self.value(t, n) for t, n in e.inputs]
        if not any(b for _, b in outs + seeds + ins):
            return
        if any(r is not None and r._node.value is not None for r in e.results):
            raise Fallback("a value was read while tracing")
        o_list, s_list = [], []
        for (o, ob), (s, sb), (t, _) in zip(outs, seeds, e.outputs):
            if ob and s is None:
                s = _creation.ones((self.size,) + tuple(t.shape), dtype=t.dtype)
            elif ob and not sb:
                s = _expand(s, self.size)
            elif sb and not ob:
                o = _expand(o, self.size)
            o_list.append(o)
            s_list.append(s)
        got = _autograd.grad(o_list, [t for t, _ in ins], s_list, retain_graph=True,
                             create_graph=e.create_graph, allow_unused=True,
                             materialize_grads=e.materialize)
        for r, g in zip(e.results, got):
            if r is None:
                continue
            if g is None or tuple(g.shape) != (self.size,) + tuple(r.shape):
                raise Fallback("a gradient that is not per slice")
            self.env[id(r._node)] = g
            self.keep.append(r._node)


def check_clean(run: _Replay, outputs: list) -> None:
    """No slice the function was traced on is in the replayed outputs' graphs: an op that
    reached a slice without the tape (built its node itself) would leak slice 0's values
    into every row. The walk stops at computed nodes."""
    seen: set[int] = set()
    todo = [t._node for t in outputs if isinstance(t, TensorBase)]
    while todo:
        n = todo.pop()
        k = id(n)
        if k in seen:
            continue
        if k in run.slices:
            raise Fallback("a slice reached the result without the tape")
        seen.add(k)
        if n.value is None:
            todo.extend(n.inputs)


def replay(tape: Tape, slices: dict, size: int) -> _Replay:
    """Replay the tape over the batch; `slices`: id(slice node) -> (node, batched tensor)."""
    r = _Replay(tape, slices, size)
    r.run()
    return r

