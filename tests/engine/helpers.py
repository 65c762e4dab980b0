"""Drive the engine directly and compare it with PyTorch.

`EngineCase` builds one Graph per (op, sample, dtype): leaves for the inputs, the op,
`grad` nodes for first-order gradients (seeded with a random cotangent), and `grad` nodes
over those gradients for second order (seeded with random vectors, several roots at
once). The graph is compiled once; finite differences rerun the same Program on
perturbed leaves.

Graphs run on the array module in `XP` (numpy unless the `backend` fixture of
conftest.py says otherwise): leaves go to the device once, results come back to the host,
and every comparison happens there.
"""

from __future__ import annotations

import numpy as np
import torch

from remotegrad.proto import catalog
from remotegrad.worker.engine import Graph, Sym, compile_graph

from .backends import to_device, to_host
from .torch_refs import reference

XP = np  # the array module the graphs run on; set per backend by conftest.py

TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-7, atol=1e-9),
       "float16": dict(rtol=1e-2, atol=1e-2)}
FUSED_TOL = {"float16": dict(rtol=4e-3, atol=1e-3), "float32": dict(rtol=1e-5, atol=1e-6),
             "float64": dict(rtol=1e-12, atol=1e-14)}
GRAD_TOL = {"float32": dict(rtol=1e-3, atol=1e-4), "float64": dict(rtol=1e-6, atol=1e-8)}


def make_value(spec: catalog.In, dtype: str, rng: np.random.Generator, noncontig: bool):
    if spec.kind == "scalar":
        return spec.value
    if spec.kind == "fixed":
        return np.array(spec.value, dtype)
    if spec.kind in ("value", "mask"):
        return np.array(spec.value)
    if spec.kind == "int":
        return rng.integers(int(spec.low), int(spec.high), spec.shape).astype(np.int64)
    if spec.kind == "bool":
        return rng.random(spec.shape) < 0.5
    a = rng.uniform(spec.low, spec.high, spec.shape).astype(dtype)
    if noncontig and a.ndim and a.size:
        # Same values, strided memory: every other element of a wider buffer.
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype)
        wide[..., ::2] = a
        a = wide[..., ::2]
        assert not a.flags.c_contiguous or a.shape[-1] <= 1
    return a


class EngineGraph:
    """A Graph with leaves fed from a dict, compiled once, runnable on new leaf values."""

    def __init__(self) -> None:
        self.g = Graph()
        self.values: dict[str, np.ndarray] = {}
        self.device: dict[str, object] = {}  # the leaves on XP, made once: a run that
        # wrote into one would show in the next run's results

    def leaf(self, arr: np.ndarray) -> int:
        h = f"h{len(self.values)}"
        self.values[h] = arr
        return self.g.add("leaf", (), {"hash": h, "dtype": arr.dtype.name,
                                       "shape": tuple(arr.shape)})

    def input(self, v) -> int:
        if isinstance(v, (bool, int, float)):
            return self.g.add("const", (), {"value": v})
        return self.leaf(v)

    def compile(self, targets: list[int], fuse: bool | None = None):
        self.prog = compile_graph(self.g, targets, XP, fuse)
        return self

    def run(self, values: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
        xp = self.prog.xp
        for h, v in self.values.items():
            if h not in self.device:
                self.device[h] = to_device(xp, v)
        vals = {**self.device, **{h: to_device(xp, v) for h, v in (values or {}).items()}}
        return [to_host(v) for v in self.prog.run([vals[h] for h in self.prog.leaf_hashes])]


def grad_indices(opdef: catalog.OpDef, sample: catalog.Sample) -> tuple[int, ...]:
    if not opdef.differentiable:
        return ()
    if sample.grad is not None:
        return sample.grad
    return tuple(i for i, s in enumerate(sample.inputs) if s.kind in ("float", "fixed"))


TIE = 0.5  # weight of the shared-ancestry link in a correlated form (see `tied`)
CORRELATED = ("first", "last")


def tied_inputs(wrt: tuple[int, ...], form: str | None) -> list[tuple[int, int]]:
    """(input, ancestor) pairs of a correlated form: "first" makes every differentiated
    input after the first depend on the first, "last" makes the first depend on the last.
    Rules must give partial derivatives per argument; the sweep sums them (see `tie`)."""
    if form is None or len(wrt) < 2:
        return []
    if form == "first":
        return [(j, wrt[0]) for j in wrt[1:]]
    return [(wrt[0], wrt[-1])]


def tie(x, src, at: float, cast):
    """x + TIE * (src.sum() - at), in x's dtype, with `at` the sum at the sample's values:
    there the value is x's own (so every input stays in its domain), but the gradient
    also flows from x into src, and a perturbation of src moves x (finite differences
    see the link). Written once for the engine's Syms and torch's tensors."""
    return x + cast(TIE * (src.sum() - at), x)


class Case:
    """One op, one sample, one dtype: values, engine graph and torch reference. With
    `correlate` ("first" or "last", see tied_inputs) the op's inputs share ancestry."""

    def __init__(self, name, sample, dtype, seed=0, noncontig=False, second=True,
                 correlate=None):
        self.name, self.sample, self.dtype = name, sample, dtype
        self.opdef = catalog.get(name)
        rng = np.random.default_rng(seed)
        self.inputs = [make_value(s, dtype, rng, noncontig) for s in sample.inputs]
        self.wrt = grad_indices(self.opdef, sample)
        self.ties = tied_inputs(self.wrt, correlate)
        self.rng = rng
        self.second = second and sample.second
        self._build()

    def _build(self):
        eg = self.eg = EngineGraph()
        ids = [eg.input(v) for v in self.inputs]
        args = list(ids)
        for j, src in self.ties:
            x = tie(Sym(eg.g, args[j]), Sym(eg.g, ids[src]), self._at(src),
                    lambda v, x: v.cast(dtype=x.dtype) if v.dtype != x.dtype else v)
            args[j] = x.id
        out = eg.g.add(self.name, args, self.sample.attrs)
        self.out_meta = eg.g.metas[out]
        targets = [out]
        self.seed = self.first = self.vs = None
        if self.wrt and self.out_meta.dtype in catalog.FLOATING:
            self.seed = self.rng.standard_normal(self.out_meta.shape).astype(self.out_meta.dtype)
            s = eg.leaf(self.seed)
            self.first = [eg.g.add("grad", (out, s, ids[i]), {"n": 1}) for i in self.wrt]
            targets += self.first
            if self.second:
                self.vs = [self.rng.standard_normal(np.shape(self.inputs[i])).astype(
                    eg.g.metas[ids[i]].dtype) for i in self.wrt]
                vids = [eg.leaf(v) for v in self.vs]
                k = len(self.first)
                targets += [eg.g.add("grad", (*self.first, *vids, ids[i]), {"n": k})
                            for i in self.wrt]
        self.ids = ids
        eg.compile(targets)

    def _at(self, src: int) -> float:
        return float(np.sum(self.inputs[src], dtype=np.float64))

    # --- engine -------------------------------------------------------------------------
    def engine(self, inputs=None):
        values = None
        if inputs is not None:
            values = {f"h{j}": np.asarray(v) for j, v in enumerate(
                v for v in inputs if type(v) not in (bool, int, float))}
        res = self.eg.run(values)
        k = len(self.wrt) if self.first else 0
        return res[0], res[1:1 + k], res[1 + k:]

    # --- torch --------------------------------------------------------------------------
    def torch(self):
        ts = []
        for i, v in enumerate(self.inputs):
            if isinstance(v, (bool, int, float)):
                ts.append(v)
                continue
            t = torch.from_numpy(np.array(v, order="C"))
            if i in self.wrt and self.first:
                t.requires_grad_(True)
            ts.append(t)
        args = list(ts)
        for j, src in self.ties:
            args[j] = tie(ts[j], ts[src], self._at(src), lambda v, x: v.to(x.dtype))
        out = reference(self.name)(*args, **self.opdef.check_attrs(self.sample.attrs))
        first, second = [], []
        if self.first:
            wrt = [ts[i] for i in self.wrt]
            seed = torch.from_numpy(self.seed)
            first = _grad([out], wrt, [seed], create_graph=self.second)
            if self.second:
                live = [(g, torch.from_numpy(v)) for g, v in zip(first, self.vs)
                        if g.requires_grad]
                second = (_grad([g for g, _ in live], wrt, [v for _, v in live])
                          if live else [torch.zeros_like(w) for w in wrt])
        return out.detach(), [g.detach() for g in first], [g.detach() for g in second]


def _grad(outs, wrt, seeds, create_graph=False):
    gs = torch.autograd.grad(outs, wrt, seeds, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(w) if g is None else g for g, w in zip(gs, wrt)]


def assert_close(got, want, tol, what):
    want = want.numpy(force=True) if torch.is_tensor(want) else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != torch's {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != torch's {want.dtype}"
    if got.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, err_msg=what, equal_nan=True, **tol)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def check_against_torch(case: Case) -> None:
    # Twice: the first run is the checked one, the second runs the generated code (direct
    # ufunc calls, results written into dying inputs); both must agree with PyTorch.
    checked = case.engine()
    out, first, second = case.engine()
    # On a GPU, a fused kernel may round differently (a*b+c contracted into one FMA) and
    # atomic adds sum in any order: equal within a few ulps there; anything else (a buffer
    # reused too early) is far outside. On numpy the two runs must agree bit for bit.
    exact = case.eg.prog.xp is np
    for a, b in zip([checked[0], *checked[1], *checked[2]], [out, *first, *second]):
        what = f"{case.name}: fast run != checked run"
        if not exact and a.dtype.kind == "f":
            tol = FUSED_TOL[a.dtype.name]
            np.testing.assert_allclose(b, a, err_msg=what, equal_nan=True, **tol)
        else:
            np.testing.assert_array_equal(a, b, err_msg=what)
    t_out, t_first, t_second = case.torch()
    form = f" correlated:{case.ties}" if case.ties else ""
    tag = f"{case.name}{tuple(case.sample.attrs.items())} {case.dtype}{form}"
    assert_close(out, t_out, TOL.get(case.out_meta.dtype, {}), f"{tag}: forward pass")
    gtol = GRAD_TOL.get(case.dtype, GRAD_TOL["float32"])
    for i, g, t in zip(case.wrt, first, t_first):
        assert_close(g, t, gtol, f"{tag}: backward pass, input {i}")
    for i, g, t in zip(case.wrt, second, t_second):
        assert_close(g, t, gtol, f"{tag}: second-order backward pass, input {i}")
