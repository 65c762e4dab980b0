"""GPU engine benchmark: remotegrad's engine on CuPy against PyTorch CUDA eager, on the same
GPU, in the same process and run. Not a test: it prints figures, ratios and targets.

    python bench/gpu.py --out bench/results/gpu.txt                  # on a CUDA machine
    python bench/gpu.py --out /tmp/dry.txt --backend numpy --quick    # CPU dry run (< 1 min)

Needs numpy, torch (a CUDA build for --backend cupy) and cupy; from remotegrad it imports
only the engine, the catalog, the backend selection and proto.nodes: no gRPC, protobuf or
redis-py. Without an installed remotegrad it maps this checkout's folders itself.

What it measures, each workload computed by the engine and by torch from identical inputs:
- MLP step 784-1024-1024-10, ReLU, cross-entropy (int64 class targets, mean): the loss and
  the six parameter gradients, batch 1024 and 8192. The engine runs one wire graph with
  grad nodes the way a worker does, `engine.execute(nodes, targets, leaf lookup, xp)`, so
  each call pays the structure key and the program lookup (never the compile); torch runs
  eager forward and torch.autograd.grad. Target: engine/torch <= 1.3. (Inputs and weights
  on a 2^-10 grid keep the hidden pre-activations exact, so ReLU masks agree: see mlp().)
- chain: 100 elementwise ops (a fixed cycle of 10 that keeps values finite) on 1M float32,
  the value only; "chain fwd+grad": the value and the gradient w.r.t. the input. When
  `remotegrad.worker.engine.executor.FUSE` exists, both again with FUSE=False. Target for
  "chain fwd" (fused where the engine fuses): engine/torch < 1.0.
- seed: the PyTorch autograd tutorial's graph (z = x @ w + b, BCE with logits, gradients of
  w and b): latency-bound.
- h2d (cupy only, engine side): 64 MiB host to device, `cupy.asarray` of pageable memory
  against a copy into pinned memory and `ndarray.set`, and `set` alone, each call
  synchronised; GB/s of each.
Other rows are informative. --quick: MLP batch 64 and 256, chain on 64K, shorter batches.

How it times: leaves are on the device beforehand (the leaf lookup returns device arrays);
both sides are warmed up (the engine's compile, CuPy's kernel JIT and cuBLAS handles stay
out), then checked once against each other (assert_allclose, rtol 1e-3 and atol 1e-4 times
the largest magnitude of torch's value; TF32 is off in torch, as CuPy does not use it by
default), then timed: back-to-back calls in batches of ~0.2 s with one synchronisation at
the end of a batch, engine and torch batches interleaved so that drift hits both, 5 batches
each; the figure is the median batch's time per call. A failing row prints its error and
the others still run; rows not started 180 s after the process started are skipped (the
GPU check script kills the run at 240 s). Rows are printed, and written to --out, as they
finish. The exit code is 0 unless no row ran.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import platform
import statistics
import sys
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()  # the guard counts from here: imports of torch and cupy too

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402, N812


def _remotegrad_from_checkout() -> None:
    """A bare GPU machine may have this checkout but no installed package: map the folders
    to package names as setup.py does (the SDK's __init__ is not needed, so not run)."""
    try:
        import remotegrad.worker.engine  # noqa: F401
        return
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("remotegrad"):
            raise
    root = Path(__file__).resolve().parent.parent
    for name, folder in (("remotegrad", "client"), ("remotegrad.worker", "worker"),
                         ("remotegrad.proto", "proto")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(root / folder)]
        sys.modules[name] = mod
    sys.modules["remotegrad"].worker = sys.modules["remotegrad.worker"]
    sys.modules["remotegrad"].proto = sys.modules["remotegrad.proto"]


_remotegrad_from_checkout()

from remotegrad.proto.nodes import WireNode, array_hash  # noqa: E402
from remotegrad.worker import backend as backends  # noqa: E402
from remotegrad.worker import engine  # noqa: E402
from remotegrad.worker.engine import executor  # noqa: E402

# Rows not started by then are skipped: scripts/gpu_check.sh kills the run at 200 s, and a
# row takes a few seconds (the first ones more, with CuPy's JIT).
TIME_GUARD_S = 150.0
# atol is relative to each reference's largest magnitude: gradients of a mean loss are
# ~1e-4, where a fixed atol of 1e-4 would pass anything.
RTOL, ATOL = 1e-3, 1e-4
MLP_SIZES = [784, 1024, 1024, 10]
CHAIN_LEN = 100
# A cycle that stays bounded: exp sees values <= ~1.2, sqrt sees |sin(.)| > 0.
CHAIN_OPS = ["exp", "neg", "tanh", "sigmoid", "mul2", "add1", "sin", "abs", "sqrt", "cos"]
ENGINE_SCALAR_OPS = {"mul2": ("mul", 0.5), "add1": ("add", 1.0)}
TORCH_CHAIN = {"exp": torch.exp, "neg": torch.neg, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "mul2": lambda t: t * 0.5, "add1": lambda t: t + 1.0, "sin": torch.sin,
               "abs": torch.abs, "sqrt": torch.sqrt, "cos": torch.cos}
H2D_BYTES = 64 << 20


@dataclass(frozen=True)
class Device:
    """Where both sides run, and how each waits for its queued work."""
    backend: str
    xp: Any
    to_dev: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]
    sync: Callable[[], None]
    torch_device: str
    torch_sync: Callable[[], None]


def make_device(backend: str) -> Device:
    if backend == "numpy":
        return Device("numpy", np, lambda a: a, np.asarray, lambda: None, "cpu", lambda: None)
    b = backends.select("cupy")
    cp = b.xp
    return Device("cupy", cp, b.to_device, b.to_host,
                  lambda: cp.cuda.get_current_stream().synchronize(), "cuda",
                  torch.cuda.synchronize)


@dataclass(frozen=True)
class Config:
    batch_s: float   # seconds one timed batch should take
    batches: int
    warmup: int      # calls of each side before the check
    mlp_batches: tuple[int, ...]
    chain_size: int


FULL = Config(0.2, 5, 3, (1024, 8192), 1 << 20)
QUICK = Config(0.05, 3, 2, (64, 256), 1 << 16)


# --- graphs ------------------------------------------------------------------------------
class Wire:
    """A wire graph built as the SDK builds one (node ids, leaves named by content hash),
    with the leaf data already on the device, as a worker's leaf lookup returns it."""

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.nodes: list[WireNode] = []
        self.data: dict[str, Any] = {}

    def add(self, op: str, *inputs: int, **attrs) -> int:
        self.nodes.append(WireNode(len(self.nodes) + 1000, op, tuple(inputs), attrs))
        return self.nodes[-1].id

    def leaf(self, arr: np.ndarray) -> int:
        h = array_hash(arr)
        self.data[h] = self.dev.to_dev(arr)
        return self.add("leaf", hash=h, dtype=arr.dtype.name, shape=tuple(arr.shape))

    def grads(self, out: int, wrts: list[int], shape: tuple[int, ...] = ()) -> list[int]:
        """Gradients of `out` (seeded with ones of `shape`) w.r.t. each of `wrts`."""
        one = self.add("full", shape=shape, value=1.0, dtype="float32")
        return [self.add("grad", out, one, w, n=1) for w in wrts]

    def runner(self, targets: list[int]) -> Callable[[], list]:
        nodes, lookup, xp = self.nodes, self.data.__getitem__, self.dev.xp
        return lambda: engine.execute(nodes, targets, lookup, xp)


def to_torch(dev: Device, arr: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.from_numpy(arr.copy()).to(dev.torch_device).requires_grad_(grad)


Pair = tuple[Callable[[], list], Callable[[], list]]  # (engine step, torch step)


def mlp(dev: Device, batch: int) -> Pair:
    # Inputs in {-1, 0, 1} and parameters on a grid of 2^-10 within nn.Linear's init
    # bounds: the hidden layers' pre-activations are then exact in float32 whatever the
    # summation order (cuBLAS's, MKL's, numpy's), so both sides see the same ReLU masks. With
    # random floats a pre-activation within rounding of 0 flips its mask on one side, and one
    # flip moves a whole row of a weight gradient past any float32 tolerance.
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(MLP_SIZES, MLP_SIZES[1:]):
        k = round(1024 / np.sqrt(fan_in))
        for shape in ((fan_out, fan_in), (fan_out,)):
            params.append((rng.integers(-k, k + 1, shape) / 1024).astype(np.float32))
    x = rng.integers(-1, 2, (batch, MLP_SIZES[0])).astype(np.float32)
    y = rng.integers(0, MLP_SIZES[-1], batch).astype(np.int64)

    w = Wire(dev)
    xi, yi = w.leaf(x), w.leaf(y)
    pids = [w.leaf(p) for p in params]
    h = xi
    for layer in range(3):
        h = w.add("linear", h, pids[2 * layer], pids[2 * layer + 1])
        if layer < 2:
            h = w.add("relu", h)
    loss = w.add("cross_entropy", h, yi)
    engine_fn = w.runner([loss, *w.grads(loss, pids)])

    tp = [to_torch(dev, p, grad=True) for p in params]
    tx, ty = to_torch(dev, x), to_torch(dev, y)

    def torch_fn():
        t = tx
        for layer in range(3):
            t = F.linear(t, tp[2 * layer], tp[2 * layer + 1])
            if layer < 2:
                t = torch.relu(t)
        out = F.cross_entropy(t, ty)
        return [out.detach(), *torch.autograd.grad(out, tp)]
    return engine_fn, torch_fn


def torch_chain(t: torch.Tensor) -> torch.Tensor:
    for i in range(CHAIN_LEN):
        t = TORCH_CHAIN[CHAIN_OPS[i % len(CHAIN_OPS)]](t)
    return t


def chain(dev: Device, size: int, with_grad: bool) -> Pair:
    x = np.random.default_rng(1).uniform(0.1, 1.0, size).astype(np.float32)
    w = Wire(dev)
    xi = y = w.leaf(x)
    for i in range(CHAIN_LEN):
        op = CHAIN_OPS[i % len(CHAIN_OPS)]
        if op in ENGINE_SCALAR_OPS:
            name, value = ENGINE_SCALAR_OPS[op]
            y = w.add(name, y, w.add("const", value=value))
        else:
            y = w.add(op, y)
    targets = [y, *w.grads(y, [xi], shape=(size,))] if with_grad else [y]
    engine_fn = w.runner(targets)

    tx = to_torch(dev, x, grad=with_grad)

    def torch_fwd():
        with torch.no_grad():
            return [torch_chain(tx)]

    def torch_grad():
        out = torch_chain(tx)
        (g,) = torch.autograd.grad(out, tx, torch.ones_like(out))  # the engine's seed too
        return [out.detach(), g]
    return engine_fn, torch_grad if with_grad else torch_fwd


def seed(dev: Device) -> Pair:
    """The PyTorch autograd tutorial's graph."""
    rng = np.random.default_rng(2)
    x, y = np.ones(5, np.float32), np.zeros(3, np.float32)
    wt = rng.standard_normal((5, 3), dtype=np.float32)
    b = rng.standard_normal(3, dtype=np.float32)
    w = Wire(dev)
    xi, yi, wi, bi = (w.leaf(a) for a in (x, y, wt, b))
    z = w.add("add", w.add("matmul", xi, wi), bi)
    loss = w.add("binary_cross_entropy_with_logits", z, yi)
    engine_fn = w.runner([loss, *w.grads(loss, [wi, bi])])

    tx, ty = to_torch(dev, x), to_torch(dev, y)
    tw, tb = to_torch(dev, wt, grad=True), to_torch(dev, b, grad=True)

    def torch_fn():
        out = F.binary_cross_entropy_with_logits(torch.matmul(tx, tw) + tb, ty)
        return [out.detach(), *torch.autograd.grad(out, [tw, tb])]
    return engine_fn, torch_fn


# --- checking and timing -----------------------------------------------------------------
def check(dev: Device, ours: list, theirs: list) -> str:
    """'check ok', or what differs: each output's max abs error past the tolerance."""
    if len(ours) != len(theirs):
        return f"CHECK FAILED: {len(ours)} outputs vs {len(theirs)}"
    bad = []
    for k, (a, t) in enumerate(zip(ours, theirs)):
        a, b = np.asarray(dev.to_host(a)), t.detach().cpu().numpy()
        if a.shape != b.shape:
            bad.append(f"out{k} shape {a.shape} vs {b.shape}")
            continue
        scale = float(np.abs(b).max()) if b.size else 1.0
        try:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL * scale)
        except AssertionError:
            err = np.abs(a.astype(np.float64) - b)
            off = ~np.isclose(a, b, rtol=RTOL, atol=ATOL * scale)
            bad.append(f"out{k} max abs err {np.nanmax(err):.3g} (|ref| max {scale:.3g}), "
                       f"{off.sum()}/{off.size} elements off")
    return "check ok" if not bad else "CHECK FAILED: " + "; ".join(bad)


def batch_time(fn: Callable, n: int, sync: Callable[[], None]) -> float:
    """Seconds per call of n back-to-back calls, one synchronisation at the end."""
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - t0) / n


def calls_per_batch(fn: Callable, sync: Callable[[], None], batch_s: float) -> int:
    per = min(batch_time(fn, 1, sync), batch_time(fn, 3, sync))
    return int(min(max(1, batch_s / max(per, 1e-7)), 100_000))


def time_interleaved(calls: list[tuple[Callable, Callable]], cfg: Config) -> list[float]:
    """Median seconds per call of each (fn, sync), batches interleaved (a, b, a, b, ...)
    so that drift in clocks or load hits all of them."""
    counts = [calls_per_batch(fn, sync, cfg.batch_s) for fn, sync in calls]
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(cfg.batches):
        for (fn, sync), n, s in zip(calls, counts, samples):
            s.append(batch_time(fn, n, sync))
    return [statistics.median(s) for s in samples]


# --- rows ----------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    engine_ms: float | None = None
    torch_ms: float | None = None
    target: tuple[str, float] | None = None  # ("<=", 1.3): ratio engine/torch wanted
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.engine_ms is None or not self.torch_ms:
            return None
        return self.engine_ms / self.torch_ms

    def line(self) -> str:
        ms = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        ratio, met, target = self.ratio, "-", "-"
        if self.target is not None:
            op, bound = self.target
            target = f"{op}{bound}"
            if ratio is not None:
                met = "yes" if (ratio <= bound if op == "<=" else ratio < bound) else "NO"
        r = "-" if ratio is None else f"{ratio:.2f}"
        return (f"{self.name:34} {ms(self.engine_ms):>10} {ms(self.torch_ms):>10} {r:>7} "
                f"{target:>7} {met:>5}  {self.note}")


HEADER = (f"{'workload':34} {'engine ms':>10} {'torch ms':>10} {'ratio':>7} {'target':>7} "
          f"{'met?':>5}  check / note")


def pair_row(name: str, dev: Device, cfg: Config, pair: Pair, target=None) -> list[Row]:
    engine_fn, torch_fn = pair
    for _ in range(cfg.warmup):
        engine_fn()
        torch_fn()
    dev.sync()
    dev.torch_sync()
    note = check(dev, engine_fn(), torch_fn())
    te, tt = time_interleaved([(engine_fn, dev.sync), (torch_fn, dev.torch_sync)], cfg)
    return [Row(name, te * 1e3, tt * 1e3, target, note)]


@contextlib.contextmanager
def fusion(on: bool):
    """executor.FUSE set for the block; cached programs dropped so they recompile."""
    saved = executor.FUSE
    executor.FUSE = on
    engine.plans.clear()
    try:
        yield
    finally:
        executor.FUSE = saved
        engine.plans.clear()


def h2d_rows(dev: Device, cfg: Config) -> list[Row]:
    import cupyx
    cp = dev.xp
    host = np.random.default_rng(3).standard_normal(H2D_BYTES // 4, dtype=np.float32)
    pinned = cupyx.empty_pinned(host.shape, host.dtype)  # allocated once: not timed
    dst = cp.empty(host.shape, host.dtype)

    # Each call waits for its copy: one transfer's whole time, and the pinned buffer is
    # never rewritten while a copy from it may still run.
    def pageable():
        a = cp.asarray(host)
        dev.sync()
        return a

    def staged():
        np.copyto(pinned, host)
        dst.set(pinned)
        dev.sync()

    def set_only():
        dst.set(pinned)
        dev.sync()

    def worker():  # what a worker does with a leaf: the backend's to_device
        a = dev.to_dev(host)
        dev.sync()
        return a

    for fn in (pageable, staged, set_only, worker):
        fn()
    ok = (np.array_equal(cp.asnumpy(dst), host) and np.array_equal(cp.asnumpy(pageable()), host)
          and np.array_equal(cp.asnumpy(worker()), host))
    tp, ts, t_set, tw = time_interleaved(
        [(fn, dev.sync) for fn in (pageable, staged, set_only, worker)], cfg)
    gbs = lambda t: f"{H2D_BYTES / t / 1e9:.1f} GB/s"  # noqa: E731
    tag = "" if ok else " (COPY MISMATCH)"
    return [Row("h2d 64MiB pageable (asarray)", tp * 1e3, note=gbs(tp) + tag),
            Row("h2d 64MiB pinned-staged (copy+set)", ts * 1e3, note=gbs(ts) + tag),
            Row("h2d 64MiB set from pinned only", t_set * 1e3, note=gbs(t_set) + tag),
            Row("h2d 64MiB worker to_device", tw * 1e3, note=gbs(tw) + tag)]


def plan(dev: Device, cfg: Config) -> list[tuple[str, Callable[[], list[Row]]]]:
    """(name, thunk) per row, in run order; names say the sizes actually used."""
    mlp_t, chain_t = ("<=", 1.3), ("<", 1.0)
    n = cfg.chain_size
    size = f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"
    rows = [(f"MLP step b={b}", lambda b=b: pair_row(f"MLP step b={b}", dev, cfg,
                                                       mlp(dev, b), mlp_t))
            for b in cfg.mlp_batches]

    def chain_rows(suffix: str, fused_target) -> list:
        return [(f"chain fwd {size}{suffix}", lambda: pair_row(
                    f"chain fwd {size}{suffix}", dev, cfg, chain(dev, n, False), fused_target)),
                (f"chain fwd+grad {size}{suffix}", lambda: pair_row(
                    f"chain fwd+grad {size}{suffix}", dev, cfg, chain(dev, n, True)))]

    rows += chain_rows("", chain_t)
    rows.append(("seed graph fwd+grad", lambda: pair_row("seed graph fwd+grad", dev, cfg,
                                                         seed(dev))))
    if isinstance(getattr(executor, "FUSE", None), bool):  # the fusion flag exists
        for name, thunk in chain_rows(" (no fusion)", None):
            rows.append((name, lambda thunk=thunk: _unfused(thunk)))
    if dev.backend == "cupy":
        rows.append(("h2d 64MiB", lambda: h2d_rows(dev, cfg)))
    return rows


def _unfused(thunk):
    with fusion(False):
        return thunk()


# --- output --------------------------------------------------------------------------------
class Out:
    """Prints and appends to --out as it goes, so a run cut short still leaves its rows."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "w")  # noqa: SIM115  (closed in main)

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.f.write(text + "\n")
        self.f.flush()


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001  (the header must not stop the rows)
        return f"? ({type(e).__name__}: {e})"


def header(out: Out, dev: Device, cfg: Config, quick: bool) -> None:
    out(f"remotegrad engine vs PyTorch eager, {datetime.datetime.now():%Y-%m-%d %H:%M} "
        f"({' '.join(sys.argv[1:])})")
    if dev.backend == "cupy":
        cp = dev.xp
        rt, drv = cp.cuda.runtime.runtimeGetVersion(), cp.cuda.runtime.driverGetVersion()
        out(f"device: {_try(lambda: torch.cuda.get_device_name(0))}  (engine on cupy, "
            "torch on cuda)")
        out(f"versions: python {platform.python_version()}, numpy {np.__version__}, torch "
            f"{torch.__version__} (CUDA {torch.version.cuda}), cupy {cp.__version__}, CUDA "
            f"runtime {rt // 1000}.{rt % 1000 // 10}, driver {drv // 1000}.{drv % 1000 // 10}")
    else:
        omp = os.environ.get("OMP_NUM_THREADS")
        out(f"device: CPU ({platform.machine()}, torch threads {torch.get_num_threads()}"
            f"{f', OMP_NUM_THREADS={omp}' if omp else ''}) -- CPU DRY RUN: engine on numpy "
            "vs torch CPU, NOT GPU figures")
        out(f"versions: python {platform.python_version()}, numpy {np.__version__}, "
            f"torch {torch.__version__}")
    fuse = getattr(executor, "FUSE", None)
    out(f"engine fusion: executor.FUSE = {fuse}" if isinstance(fuse, bool)
        else "engine fusion: no executor.FUSE flag (no 'no fusion' rows)")
    out(f"timing: {cfg.warmup} warm-up calls each, then {cfg.batches} interleaved batches of "
        f"~{cfg.batch_s} s each side, median per call; TF32 off in torch"
        + ("; --quick sizes" if quick else ""))
    out(f"check: engine vs torch, assert_allclose rtol {RTOL}, atol {ATOL} x max|torch value|")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="file to write the report to")
    p.add_argument("--backend", choices=["cupy", "numpy"], default="cupy")
    p.add_argument("--quick", action="store_true", help="small sizes, short batches")
    args = p.parse_args()
    cfg = QUICK if args.quick else FULL
    # Full fp32 in torch, as CuPy computes by default: the comparison is of equal work.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = Out(args.out)
    try:
        dev = make_device(args.backend)
    except Exception as e:  # noqa: BLE001  (say why, in the report too)
        out(f"cannot use backend {args.backend}: {type(e).__name__}: {e}")
        out.f.close()
        return 1
    header(out, dev, cfg, args.quick)
    out()
    out(HEADER)
    done: list[Row] = []
    errors: list[str] = []
    for name, thunk in plan(dev, cfg):
        if time.perf_counter() - STARTED > TIME_GUARD_S:
            rows = [Row(name, note=f"SKIPPED: time guard ({TIME_GUARD_S:.0f} s) reached")]
        else:
            try:
                rows = thunk()
            except Exception as e:  # noqa: BLE001  (one failing row must not stop the rest)
                rows = [Row(name, note=f"ERROR {type(e).__name__}: {str(e)[:200]}")]
                tb = traceback.format_exc().rstrip().splitlines()
                errors.append("\n".join([f"{name}:", *tb[-8:]]))  # the end says what broke
        for row in rows:
            out(row.line())
        done += rows
        gc.collect()  # the previous row's arrays go before the next row allocates
    out()
    out(f"total {time.perf_counter() - STARTED:.1f} s since start, imports included")
    for e in errors:
        out(e)
    out.f.close()
    return 0 if any(r.engine_ms is not None for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
