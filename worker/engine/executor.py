"""Runs a lowered graph on an array module (numpy or cupy).

A graph is compiled once into a `Program`: only the nodes the targets need, in id order
(which is topological); constant subgraphs (no leaf below them) evaluated at compile
time when small; each remaining node a step `(function, input slots, output slot, slots
that die here)`, and every intermediate is freed right after its last use. The first
run walks the steps and checks every value against its node's declared shape and dtype,
patching the few steps whose array-module result differs (numpy scalars, dtype quirks).
Then the steps are turned into one straight-line Python function (`v7 = f3(v2, v5)`;
`del v2`), so later runs pay no per-step interpretation: no list of values, no argument
lists, no loop. Very long programs keep the loop (compiling them would cost more than it
saves).

In that function an op that is one array-module ufunc (add, mul, exp, tanh, ...) calls it
directly, and writes its result into an input that dies at that step when that is safe:
the input has the output's shape and dtype and nobody else can see its memory (it was
made by an op that always returns a fresh array, and every op that reads it does too, so
no view of it exists). `v7 = multiply(v2, v5, out=v2)` saves an allocation and keeps the
working set small.

On an array module that can fuse (CuPy), runs of elementwise steps (these ufunc calls, and
ops with a `fusable` form in the catalog) become one kernel each
(see fusion.py), and nothing in a run waits for the device: kernels are queued back to
back and the host meets the device only when results are copied back.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from numpy import errstate as _np_errstate
from numpy import generic as _np_generic
from remotegrad.proto import catalog
from remotegrad.proto.catalog import OpError
from remotegrad.proto.catalog import _checks as checks

from . import blocks, cost, fusion, kernels  # noqa: F401  (kernels: registers the CUDA kernels)
from .graph import Graph

LeafLookup = Callable[[str], Any]
FOLD_BYTES = 1 << 16  # constants up to this size are computed once, at compile time
CODEGEN_MAX_STEPS = 20_000
FUSE = True  # fuse elementwise runs where the array module can (cupy.fuse); see fusion.py


def _bind(fn, xp, attrs):
    """fn(xp, *arrays, **attrs) as a function of the arrays (an op's forward or fusable)."""
    return partial(fn, xp, **attrs) if attrs else partial(fn, xp)


def _step(g: Graph, n: int, xp):
    """Node `n`'s forward as a function of its input arrays; a long op in blocks, so that
    a cancellation stops it part way (blocks.py)."""
    fn = _bind(catalog.get(g.ops[n]).forward, xp, g.attrs[n])
    if g.ops[n] in blocks.BLOCKED and g.inputs[n]:
        fn = blocks.blocked(fn, xp, g.ops[n], cost.node_flops(g, n),
                            g.metas[g.inputs[n][0]].shape, g.metas[n].shape, g.attrs[n])
    return fn


class Program:
    """A compiled graph. `leaves` are the lowered graph's leaf node ids; run() takes their
    arrays in that order."""

    def __init__(self, g: Graph, targets: list[int], xp, fuse: bool | None = None) -> None:
        self.xp = xp
        # fuse=None: wherever the array module can. True on numpy runs the same grouped
        # functions unfused (the tests check the grouping that way).
        self.fuse = FUSE and hasattr(xp, "fuse") if fuse is None else fuse
        self.groups: dict[int, fusion.Group] = {}
        self.targets = list(targets)
        order = g.needed(targets)
        self.leaves = [n for n in order if g.ops[n] == "leaf"]
        self.leaf_metas = [g.metas[n] for n in self.leaves]
        # dtype objects: comparing them is one C call (dtype.name is a Python property)
        self._leaf_dtypes = [xp.dtype(m.dtype) for m in self.leaf_metas]
        self._leaf_shapes = [tuple(m.shape) for m in self.leaf_metas]  # as arrays' shapes are
        self.leaf_hashes = [g.attrs[n]["hash"] for n in self.leaves]
        self.nslots = len(g)
        folded = self._fold(g, order)
        self.consts = list(folded.items())
        live = [n for n in order if n not in folded and g.ops[n] != "leaf"]
        last: dict[int, int] = {}
        for pos, n in enumerate(live):
            for i in g.inputs[n]:
                last[i] = pos
        keep = set(targets)
        dies: list[list[int]] = [[] for _ in live]
        for i, pos in last.items():
            if i not in keep:
                dies[pos].append(i)
        self.steps = [(_step(g, n, xp), g.inputs[n], n, tuple(dies[pos]))
                      for pos, n in enumerate(live)]
        self.names = [g.ops[n] for n in live]  # each step's op, for profiles and messages
        self.metas = {n: g.metas[n] for n in live}
        self.direct = _direct_calls(g, live, dies, xp)
        self.fusable = {pos: _bind(catalog.get(g.ops[n]).fusable, xp, g.attrs[n])
                        for pos, n in enumerate(live)
                        if pos not in self.direct and catalog.get(g.ops[n]).fusable}
        self.checked = False
        self._fast = None
        self._host = xp.__name__ == "numpy"  # value checks raise at once: none deferred
        # direct ufunc steps whose result is a numpy scalar (0-d inputs, no `out=`): kept
        # direct, the scalar made a 0-d array (cheaper than _fixed's general conform); with
        # `out=` the ufunc returns that 0-d array itself
        self._as_array: set[int] = set()

    def _fold(self, g: Graph, order: list[int]) -> dict[int, Any]:
        folded: dict[int, Any] = {}
        with _quiet(self.xp), checks.deferred(self.xp):  # one settle for all constants
            for n in order:
                op = g.ops[n]
                if op == "leaf" or any(i not in folded for i in g.inputs[n]):
                    continue
                if g.metas[n].nbytes > FOLD_BYTES or not catalog.get(op).forward:
                    continue
                fn = _bind(catalog.get(op).forward, self.xp, g.attrs[n])
                value = fn(*(folded[i] for i in g.inputs[n]))
                folded[n] = _conform(self.xp, value, g.metas[n])
        return folded

    def run(self, leaf_arrays: list[Any]) -> list[Any]:
        # inf and nan are values here, as in PyTorch, not warnings in a worker's log. Checks
        # on values (indices in range, integer divisors not zero) settle when it ends.
        if self._host:
            with _np_errstate(all="ignore"):
                return self._run(leaf_arrays)
        with _quiet(self.xp), checks.deferred(self.xp):
            return self._run(leaf_arrays)

    def _run(self, leaf_arrays: list[Any]) -> list[Any]:
        for meta, dtype, shape, a in zip(self.leaf_metas, self._leaf_dtypes, self._leaf_shapes,
                                         leaf_arrays):
            if a.dtype != dtype or a.shape != shape:
                raise OpError(f"leaf: stored tensor is {a.dtype.name}{list(a.shape)}, graph "
                              f"says {meta.dtype}{list(meta.shape)}")
        if self._fast is not None:
            return self._fast(leaf_arrays)
        vals: list[Any] = [None] * self.nslots
        for n, v in self.consts:
            vals[n] = v
        for n, a in zip(self.leaves, leaf_arrays):
            vals[n] = a
        if not self.checked:
            return self._run_checked(vals)
        for fn, ins, out, dies in self.steps:
            vals[out] = fn(*[vals[i] for i in ins])
            for d in dies:
                vals[d] = None
        return [vals[t] for t in self.targets]

    def _run_checked(self, vals: list[Any]) -> list[Any]:
        xp = self.xp
        steps = []
        for pos, (fn, ins, out, dies) in enumerate(self.steps):
            value = fn(*[vals[i] for i in ins])
            meta = self.metas[out]
            if not _conforms(xp, value, meta):
                scalar = self._host and _is_numpy_scalar_of(value, meta)
                fn = partial(_fixed_scalar if scalar else _fixed, fn, xp, meta)
                value = _conform(xp, value, meta)
                if scalar and pos in self.direct:
                    if self.direct[pos][1] is None:  # with out= it gives that 0-d array
                        self._as_array.add(pos)  # numpy's ufunc on 0-d arrays: a scalar
                else:
                    self.direct.pop(pos, None)  # the plain ufunc would need the same fix
                self.fusable.pop(pos, None)
            vals[out] = value
            for d in dies:
                vals[d] = None
            steps.append((fn, ins, out, dies))
        self.steps, self.checked = steps, True
        if len(steps) <= CODEGEN_MAX_STEPS:
            self._fast = self._codegen()
        return [vals[t] for t in self.targets]

    def _codegen(self):
        """The steps as one Python function over local variables (see module doc)."""
        env: dict[str, Any] = {}
        lines = ["def run(leaves):"]
        lines += [f"    v{n} = leaves[{i}]" for i, n in enumerate(self.leaves)]
        for n, v in self.consts:
            env[f"c{n}"] = v
            lines.append(f"    v{n} = c{n}")
        if self.fuse:
            calls = {pos: ufunc for pos, (ufunc, _) in self.direct.items()} | self.fusable
            self.groups = fusion.build(self.steps, calls, self.metas, self.targets, self.xp)
        identity = catalog.get("detach").forward
        k = 0
        while k < len(self.steps):
            group = self.groups.get(k)
            if group is not None:
                env[f"g{k}"] = group.call
                lines.append(f"    {', '.join(f'v{o}' for o in group.outputs)} = "
                             f"g{k}({', '.join(f'v{i}' for i in group.inputs)})")
                made = {self.steps[p][2] for p in range(group.start, group.end)}
                dies = [d for p in range(group.start, group.end) for d in self.steps[p][3]
                        if d not in made]  # values made inside never existed
                if dies:
                    lines.append(f"    del {', '.join(f'v{d}' for d in dies)}")
                k = group.end
                continue
            fn, ins, out, dies = self.steps[k]
            args = ", ".join(f"v{i}" for i in ins)
            call = f"f{k}({{}})"
            if k in self.direct:
                env[f"f{k}"], into = self.direct[k]
                args += f", out=v{into}" if into is not None else ""
                if k in self._as_array:
                    env["as_array"] = self.xp.asarray
                    call = f"as_array(f{k}({{}}))"
            elif getattr(fn, "func", None) is identity and len(ins) == 1:
                call = "{}"  # detach's forward returns its input: the same array, no call
            else:
                env[f"f{k}"] = fn
            lines.append(f"    v{out} = {call.format(args)}")
            if dies:
                lines.append(f"    del {', '.join(f'v{d}' for d in dies)}")
            k += 1
        lines.append(f"    return [{', '.join(f'v{t}' for t in self.targets)}]")
        exec(compile("\n".join(lines), "<remotegrad program>", "exec"), env)  # noqa: S102
        return env["run"]


def _direct_calls(g: Graph, live: list[int], dies, xp) -> dict[int, tuple[Any, int | None]]:
    """{step: (ufunc, input slot to write the result into, or None)} (see module doc)."""
    consumers: dict[int, list[int]] = defaultdict(list)
    for n in live:
        for i in g.inputs[n]:
            consumers[i].append(n)
    mine = set(live)

    def ufunc(n):
        op = catalog.get(g.ops[n])
        at_defaults = all(g.attrs[n][k] == d for k, (_, d) in op.attrs.items())
        return op.ufunc if op.ufunc and at_defaults else None

    def fresh(n):
        # (OpDef.fresh: the op's result never shares memory with an input)
        return n in mine and (ufunc(n) is not None or catalog.get(g.ops[n]).fresh)

    plan = {}
    for pos, n in enumerate(live):
        name = ufunc(n)
        if name is None:
            continue
        meta = g.metas[n]
        into = next((i for i in g.inputs[n] if i in dies[pos] and fresh(i)
                     and g.metas[i].shape == meta.shape and g.metas[i].dtype == meta.dtype
                     and all(fresh(c) for c in consumers[i])), None)
        plan[pos] = (getattr(xp, name), into)
    return plan


def _quiet(xp):
    return xp.errstate(all="ignore") if xp.__name__ == "numpy" else contextlib.nullcontext()


def _conforms(xp, value, meta) -> bool:
    return (isinstance(value, xp.ndarray) and value.dtype.name == meta.dtype
            and value.shape == meta.shape)


def _conform(xp, value, meta):
    return xp.asarray(value, dtype=meta.dtype).reshape(meta.shape)


def _fixed(fn, xp, meta, *args):
    return _conform(xp, fn(*args), meta)


def _is_numpy_scalar_of(value, meta) -> bool:
    """A numpy scalar of the 0-d node's dtype (what numpy gives for 0-d operands)."""
    return meta.shape == () and isinstance(value, _np_generic) and value.dtype.name == meta.dtype


def _fixed_scalar(fn, xp, meta, *args):
    """_fixed where the first run gave a numpy scalar of the node's dtype (later runs give
    the same: leaves are checked against their metas at every run)."""
    value = fn(*args)
    return xp.asarray(value) if isinstance(value, _np_generic) else _conform(xp, value, meta)


def run(g: Graph, targets: list[int], leaf: LeafLookup, xp) -> list[Any]:
    """Values of `targets` of a graph without grad nodes (composites are expanded here);
    `leaf(hash)` returns a leaf's array (already on `xp`). No caching: see execute()."""
    from .autodiff import materialize
    g, targets = materialize(g, targets)
    prog = Program(g, targets, xp)
    return prog.run([leaf(g.attrs[n]["hash"]) for n in prog.leaves])
