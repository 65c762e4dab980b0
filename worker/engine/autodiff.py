"""Reverse mode as graph rewriting: every `grad` node becomes ordinary nodes.

`lower` copies a graph in topological order into a fresh one; when it meets a grad node,
all of the grad node's inputs are already copied, so their ancestry holds no grad node and
one reverse sweep over it, written with the catalog's derivative rules, yields the
gradient as new nodes. Grad nodes that share outputs, seeds and create_graph are answered
by the same sweep (written with catalog GRAD_MODE set to that create_graph). Gradients
of gradients work because an inner grad node is lowered before an outer one reads it.

An op with no rule of its own but a decomposition (gelu, silu, the losses) is
differentiated through its decomposition, built on the fly in the same graph.
"""

from __future__ import annotations

from collections import defaultdict

from remotegrad.proto import catalog
from remotegrad.proto.catalog import OpError, broadcast_shapes
from remotegrad.proto.catalog._registry import GRAD_MODE, SGN_SALT

from .graph import Graph, Sym

# PyTorch's efficient zero tensor (_efficientzerotensor: sgn's derivative, so abs's second
# derivative through sgn(x)) as a salted zero `full`: the sweep accumulates it as PyTorch's
# InputBuffer does (_accumulate), and rules run on it as its ZeroTensor kernels do
# (_zero_flow).
EZERO = -2
# ops PyTorch runs on a ZeroTensor as views of it (it stays a ZeroTensor)
_ZERO_VIEWS = frozenset({"reshape", "expand", "transpose", "permute", "squeeze",
                         "unsqueeze", "narrow", "flatten", "broadcast_to"})


def unbroadcast(g: Graph, cot: int, shape: tuple[int, ...], dtype: str) -> int:
    """Bring a contribution to an input's shape and dtype: sum over dims it was broadcast
    along, or expand one a rule left smaller (a reduction's kept-dims gradient)."""
    have = g.metas[cot].shape
    if have != shape:
        op = "expand" if _grows(have, shape) else "sum_to"
        cot = g.add(op, (cot,), {"shape": shape})
    if g.metas[cot].dtype != dtype:
        cot = g.add("cast", (cot,), {"dtype": dtype})
    return cot


def vjp(g: Graph, outputs: list[int], seeds: list[int], wrts: list[int],
        stop: frozenset[int] = frozenset()) -> list[int]:
    """Nodes holding sum_k seed_k · d(output_k)/d(wrt), for each wrt, in one reverse sweep.
    A wrt the outputs do not depend on gets zeros. Nothing flows back through a node in
    `stop`: with the wrts as stops, each wrt gets its partial derivative, as if the others
    were independent of it (what a decomposition's rule per argument needs)."""
    lo = min(wrts, default=0)
    order = g.ancestors(outputs, lo)
    wrtset = set(wrts)
    reach: set[int] = set()  # nodes through which a gradient can flow from some wrt
    for n in order:
        if n in wrtset or (catalog.get(g.ops[n]).differentiable
                           and any(i in reach for i in g.inputs[n])):
            reach.add(n)
    cot: dict[int, int] = {}
    for out, seed in zip(outputs, seeds):
        if out not in reach:
            continue
        seed = unbroadcast(g, seed, g.metas[out].shape, g.metas[out].dtype)
        _accumulate(g, cot, out, seed)
    # overwrite(view, r): view `view` after an in-place op whose result r its rule reads
    # (client/_inplace._through): PyTorch's saved result is that view, so the rule reads it.
    # Not only the outputs' ancestors: a loss of the view's base reaches r, not the view.
    results = {g.inputs[k][1]: k for k in _overwrites(g, order[0] if order else len(g))}
    for n in reversed(order):
        if n in cot and n in reach and n not in stop:
            _backprop_node(g, n, cot, reach, results.get(n, n))
    return [cot[w] if w in cot else zeros(g, w) for w in wrts]


def _overwrites(g: Graph, start: int):
    """Ids of the overwrite nodes from `start` on (list.index: a C-speed scan)."""
    ops, k = g.ops, start
    while True:
        try:
            k = ops.index("overwrite", k)
        except ValueError:
            return
        yield k
        k += 1


def ezero(g: Graph, meta) -> int:
    return g.add("full", (), {"shape": meta.shape, "value": 0.0, "dtype": meta.dtype},
                 salt=EZERO)


def is_ezero(g: Graph, n: int) -> bool:
    return g.salts.get(n) == EZERO


def _accumulate(g: Graph, cot: dict[int, int], i: int, c: int) -> None:
    """cot[i] += c as PyTorch's InputBuffer accumulates: an efficient zero held first is
    replaced by what comes (ZeroTensor + v is v: a -0.0 of v stays); one that comes to a
    tensor is added in place without grad mode (old.add_(zero) computes old + 0.0), and
    out of place, so left out, with it (create_graph)."""
    if i not in cot or is_ezero(g, cot[i]):
        if i not in cot or not is_ezero(g, c):
            cot[i] = c
    elif not (is_ezero(g, c) and GRAD_MODE.get()):
        cot[i] = g.add("add", (cot[i], c))


def _backprop_node(g: Graph, n: int, cot: dict[int, int], reach: set[int],
                   result: int) -> None:
    opdef = catalog.get(g.ops[n])
    if not opdef.differentiable or g.ops[n] == "leaf":
        return
    inputs = g.inputs[n]
    want = [idx for idx, i in enumerate(inputs)
            if i in reach and g.metas[i].dtype in catalog.FLOATING]
    if not want:
        return
    if g.salts.get(n) == SGN_SALT:  # sgn: PyTorch's sgn_backward of a real x
        _accumulate(g, cot, inputs[0], ezero(g, g.metas[inputs[0]]))
        return
    args = [Sym(g, i) for i in inputs]
    if opdef.vjp is None and opdef.variadic_rule is None:
        contribs = _through_decomposition(g, n, opdef, args, cot[n], want)
    else:
        contribs = []
        for idx in want:
            kw = {"index": idx} if opdef.variadic_rule is not None else {}
            rule = opdef.rule(idx)
            c = None if rule is None else rule(Sym(g, cot[n]), *args, out=Sym(g, result),
                                               **kw, **g.attrs[n])
            contribs.append(None if c is None else c.id)
    if is_ezero(g, cot[n]):
        contribs = _zero_flow(g, contribs, cot[n])
    for idx, c in zip(want, contribs):
        if c is None:
            continue
        i = inputs[idx]
        m = g.metas[i]
        if is_ezero(g, c) and m.dtype == g.metas[c].dtype and _grows(g.metas[c].shape, m.shape):
            c = ezero(g, m)  # an expand of it (a sum_to or a cast computes with zeros)
        else:
            c = unbroadcast(g, c, m.shape, m.dtype)
        _accumulate(g, cot, i, c)


def _grows(have: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """A tensor of shape `have` broadcasts to `shape`."""
    try:
        return broadcast_shapes(have, shape) == shape
    except OpError:
        return False


def _zero_flow(g: Graph, contribs: list[int | None], lo: int) -> list[int | None]:
    """The contributions a rule built from an efficient zero (node `lo`), rebuilt as
    PyTorch computes its formula on a ZeroTensor: a product with it, its quotient, a view
    of it and a sum of two stay one (no 0 * inf); added to a tensor it is that tensor;
    any other op computes with zeros (its negation is -0.0, a matmul beside an inf NaN)."""
    new: dict[int, int] = {}
    for k in g.ancestors([c for c in contribs if c is not None], lo):
        new[k] = _zero_rebuilt(g, k, [new.get(i, i) for i in g.inputs[k]])
    return [None if c is None else new.get(c, c) for c in contribs]


def _zero_rebuilt(g: Graph, k: int, ins: list[int]) -> int:
    op, meta = g.ops[k], g.metas[k]
    z = [is_ezero(g, i) for i in ins]
    if any(z) and not is_ezero(g, k):
        if op == "mul" or (z[0] and (op == "div" or op in _ZERO_VIEWS)) or (
                op in ("add", "sub") and all(z)):
            return ezero(g, meta)
        if op in ("add", "sub") and g.attrs[k].get("alpha", 1) == 1:
            other = ins[1] if z[0] else ins[0]
            if g.metas[other] == meta:
                return other if op == "add" or z[1] else g.add("neg", (other,))
    if ins == list(g.inputs[k]):
        return k
    return g.add_checked(op, tuple(ins), g.attrs[k], meta)


def _through_decomposition(g, n, opdef, args, seed, want):
    """Contributions per input position: partial derivatives, so the sweep stops at every
    input of the op. Without the stops, an input that is an ancestor of another
    (mse_loss(a, a * 2)) would get the other's contribution here and again when the outer
    sweep passes it on. The sweep gives one gradient per *node*, covering all its uses, so
    a node passed twice (layer_norm(x, w, w)) gets it once."""
    value = opdef.decompose(*args, **g.attrs[n])
    nodes = list(dict.fromkeys(args[idx].id for idx in want))
    stop = frozenset(a.id for a in args)
    grads = dict(zip(nodes, vjp(g, [value.id], [seed], nodes, stop)))
    out = []
    for idx in want:
        out.append(grads.pop(args[idx].id, None))
    return out


def zeros(g: Graph, w: int) -> int:
    m = g.metas[w]
    return g.add("full", (), {"shape": m.shape, "value": 0.0, "dtype": m.dtype})


def lower(src: Graph, targets: list[int]) -> tuple[Graph, list[int]]:
    """A copy of the part of `src` the targets need, with every grad node expanded."""
    dst = Graph()
    new: dict[int, int] = {}
    order = src.needed(targets)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for n in order:
        if src.ops[n] == "grad":
            groups[_grad_key(src, n)].append(n)
    overwrites = [n for n in order if src.ops[n] == "overwrite"]
    for n in order:
        if n in new:
            continue
        if src.ops[n] == "grad":
            for w in overwrites:  # vjp's sweep reads them (a view an op saved as its result)
                _copy_ahead(src, dst, new, w)
        if src.ops[n] != "grad":  # a copy: inputs map to nodes of the same metas
            new[n] = dst.add_checked(src.ops[n], tuple(new[i] for i in src.inputs[n]),
                                     src.attrs[n], src.metas[n], src.salts.get(n))
            continue
        k = src.attrs[n]["n"]
        key = _grad_key(src, n)
        members = groups[key]
        outs = [new[i] for i in key[0][:k]]
        seeds = [new[i] for i in key[0][k:]]
        # A wrt not yet copied is no ancestor of the outputs: its gradient is zero.
        ready = [m for m in members if src.inputs[m][-1] in new]
        mode = GRAD_MODE.set(key[1])
        try:
            grads = vjp(dst, outs, seeds, [new[src.inputs[m][-1]] for m in ready])
        finally:
            GRAD_MODE.reset(mode)
        for m, gid in zip(ready, grads):
            new[m] = _kept_apart(dst, gid, src.salts.get(m))
        for m in members:
            if m not in new:
                wm = src.metas[src.inputs[m][-1]]
                new[m] = dst.add("full", (), {"shape": wm.shape, "value": 0.0,
                                              "dtype": wm.dtype})
    return dst, [new[t] for t in targets]


def _copy_ahead(src: Graph, dst: Graph, new: dict[int, int], root: int) -> None:
    """Copy `root` with what it needs ahead of id order, unless that needs a grad node not
    yet expanded (src's ids are topological: inputs first)."""
    todo, stack = set(), [root]
    while stack:
        m = stack.pop()
        if m in new or m in todo:
            continue
        if src.ops[m] == "grad":
            return
        todo.add(m)
        stack.extend(src.inputs[m])
    for m in sorted(todo):
        new[m] = dst.add_checked(src.ops[m], tuple(new[i] for i in src.inputs[m]),
                                 src.attrs[m], src.metas[m], src.salts.get(m))


def _grad_key(src: Graph, n: int) -> tuple:
    """What grad nodes answered by one sweep share: outputs, seeds and create_graph."""
    attrs = src.attrs[n]
    return src.inputs[n][: 2 * attrs["n"]], attrs.get("create_graph", False)


def _kept_apart(g: Graph, nid: int, salt: int | None) -> int:
    """A gradient that a later grad differentiates against (a salted grad node) as a node
    of its own: a salted view of its value. Lowered bare, it would be the same node as an
    equal expression a rule builds (div's x / y in d/dx of x / y is the gradient g / y
    itself), and that rule would then read the tensor differentiated against: PyTorch's
    rule computes a new tensor there."""
    if salt is None:
        return nid
    return g.add_checked("reshape", (nid,), {"shape": g.metas[nid].shape}, g.metas[nid], salt)


def materialize(src: Graph, targets: list[int]) -> tuple[Graph, list[int]]:
    """The graph the executor runs: composites replaced by their decompositions and the
    casts of type promotion made explicit nodes, so running needs no per-node checks."""
    dst = Graph()
    new: dict[int, int] = {}
    for n in src.needed(targets):
        op, ins, attrs = src.ops[n], [new[i] for i in src.inputs[n]], src.attrs[n]
        opdef = catalog.get(op)
        if op == "pow" and (power := _small_power(src, n, dst, ins[0])) is not None:
            nid = power
        elif op in ("add", "sub") and (k := _folded(src, n)) is not None:
            # `y - 1` in a rule: the const it is, so x ** (5 - 1) in x ** 5's gradient is the
            # forward's x ** 4 (one node, computed once)
            nid = dst.add("const", (), {"value": k})
        elif opdef.forward is None and opdef.decompose is not None:
            nid = opdef.decompose(*(Sym(dst, i) for i in ins), **attrs).id
            nid = _conform(dst, nid, src.metas[n], op)
        elif op in _BY_SCALAR and (half := _half_by_scalar(dst, op, ins, attrs,
                                                           src.metas[n])) is not None:
            nid = half
        else:
            if opdef.promote:
                ins = _cast_inputs(dst, opdef, ins)
            elif opdef.float_inputs:
                ins = [i if dst.metas[i].dtype in catalog.FLOATING else
                       dst.add("cast", (i,), {"dtype": catalog.DEFAULT_FLOAT}) for i in ins]
            same = all(dst.metas[i] == src.metas[j] for i, j in zip(ins, src.inputs[n]))
            nid = (dst.add_checked(op, tuple(ins), attrs, src.metas[n]) if same
                   else dst.add(op, tuple(ins), attrs))
        new[n] = nid
    return dst, [new[t] for t in targets]


# PyTorch's CPU mul and div (every rounding mode) of a float16 result whose second operand
# has one element (a Python number, a 0-d tensor) run in float32 with that operand's own
# value in float32 (TensorIterator's original_scalar_value, not rounded to float16 first),
# rounded to float16 once: x * 0.1 differs in ~1/3 of values from the float16 product.
# lerp's Python number weight is taken so too (its kernel's weight.to<opmath_t>()).
_BY_SCALAR = {"mul": 1, "div": 1, "lerp_kernel": 2}  # op -> the operand


def _half_by_scalar(g: Graph, op: str, ins: list[int], attrs: dict, meta) -> int | None:
    k = _BY_SCALAR[op]
    scalar = g.metas[ins[k]]
    own = (scalar.weak if op == "lerp_kernel" else all(s == 1 for s in scalar.shape))
    if meta.dtype != "float16" or not own:
        return None
    wide = []
    for i, x in enumerate(ins):
        if i != k and g.metas[x].dtype != "float16":  # an integer tensor: the common dtype
            x = g.add("cast", (x,), {"dtype": "float16"})
        wide.append(g.add("cast", (x,), {"dtype": "float32"}))
    return g.add("cast", (g.add(op, tuple(wide), attrs),), {"dtype": "float16"})


def _small_power(src: Graph, n: int, dst: Graph, base: int) -> int | None:
    """x ** 0 as ones, x ** 1 as x, x ** 2 and x ** 3 of a floating x as x * x (* x),
    x ** -1 and x ** -2 as 1 / x and 1 / (x * x): PyTorch computes them so (a fill, a
    copy, the same roundings), and numpy's generic power is ~50x slower (x ** 1 is in
    every x ** 2's gradient). None where the node is any other power."""
    meta = src.metas[n]
    if meta.dtype not in catalog.FLOATING or dst.metas[base] != meta:
        return None
    k = _constant(src, src.inputs[n][1], 3)
    if meta.dtype == "float16" and k in (0.5, -0.5, -1, -2, 3):
        return None  # PyTorch's float16 kernel is powf for every exponent, rounded once
    if k in (0.5, -0.5):  # (no bool equals either)
        # PyTorch's kernel for these number exponents is sqrt and rsqrt, whose -0.0 and
        # -inf differ from pow's: rsqrt(-0.0) is -inf (x ** 0.5's gradient at -0.0)
        return dst.add_checked("sqrt" if k > 0 else "rsqrt", (base,), {}, meta)
    if k in (-1, -2) and not isinstance(k, bool):  # its kernel's 1 / x and 1 / (x * x)
        inv = base if k == -1 else dst.add_checked("mul", (base, base), {}, meta)
        return dst.add_checked("reciprocal", (inv,), {}, meta)
    if k not in (0, 1, 2, 3) or isinstance(k, bool):
        return None
    if k == 0:
        return dst.add("full", (), {"shape": meta.shape, "value": 1.0, "dtype": meta.dtype})
    if k == 1:
        return base
    square = dst.add_checked("mul", (base, base), {}, meta)
    return square if k == 2 else dst.add_checked("mul", (square, base), {}, meta)


def _folded(g: Graph, n: int):
    """The number an add/sub of Python numbers gives, where it is exactly what the array
    module would compute: a weak scalar of the same meta, an integer inside int64."""
    k = _constant(g, n, 3)
    if k is None or isinstance(k, bool) or catalog.scalar_meta(k) != g.metas[n]:
        return None
    if isinstance(k, int) and not -(1 << 63) <= k < (1 << 63):
        return None  # int64 wraps around; Python's int does not
    return k


def _constant(g: Graph, nid: int, depth: int):
    """The Python number a node of consts holds (`y - 1` in a derivative rule), or None."""
    op = g.ops[nid]
    if op == "const":
        return g.attrs[nid]["value"]
    if depth and op in ("add", "sub") and g.attrs[nid].get("alpha", 1) == 1:
        a, b = (_constant(g, i, depth - 1) for i in g.inputs[nid])
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a + b if op == "add" else a - b
    return None


def _conform(g: Graph, nid: int, meta, op: str) -> int:
    if g.metas[nid].shape != meta.shape:
        raise OpError(f"{op}: decomposition gave shape {list(g.metas[nid].shape)}, the op "
                      f"says {list(meta.shape)}")
    if g.metas[nid].dtype != meta.dtype:
        nid = g.add("cast", (nid,), {"dtype": meta.dtype})
    return nid


def _cast_inputs(g: Graph, opdef, ins: list[int]) -> list[int]:
    which = range(len(ins)) if opdef.promote is True else opdef.promote
    dtype = catalog.result_type([g.metas[ins[i]] for i in which])
    out = list(ins)
    for i in which:
        if g.metas[ins[i]].dtype != dtype:
            out[i] = g.add("cast", (ins[i],), {"dtype": dtype})
    return out
