"""Workloads for load tests and benchmarks: ComputeRequests built with the codec.

Each workload is a small object with `next_request()` that returns the ComputeRequest of
the next call. Leaves are named by content hash; a workload remembers which hashes it has
sent (as the SDK's session does), so a tensor reused across calls travels inline once and
by hash afterwards. `mark_lost()` forgets them when the cluster answers FAILED_PRECONDITION.

"Fresh" inputs are fresh for the cluster, not only within one run: each workload draws
them from its seed and a random salt, so a second run against the same cluster (or a
second process with the same seed) does not turn them into cache hits. Inputs meant to
repeat (the repeat pool, the MLP parameters, the chain's fixed inputs) do not depend on
the salt.

The graphs use catalog op names directly, so they do not depend on the SDK's surface:

- seed:   the tutorial's `((x * 2) ** 3).sum()` and its gradient, fresh 3x3 x each call
- mlp:    784-H-H-10 tanh MLP, cross-entropy, gradient of every parameter; parameters
          (1-16 MiB) reused across calls, a fresh batch each call
- repeat: a fixed pool of seed-sized calls sent again and again (cache hits)
- upload: a fresh large tensor (MiB) and its sum
- chain:  a synthetic elementwise chain of N ops over a tensor of M elements, a share of
          the calls exact repeats (the sweep's axes: graph size, tensor size, hit ratio)
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

import numpy as np

from remotegrad.proto import codec
from remotegrad.proto import remotegrad_pb2 as pb
from remotegrad.proto.catalog import CATALOG
from remotegrad.proto.codec import WireNode

__all__ = ["GraphBuilder", "Workload", "SeedWorkload", "MlpWorkload", "RepeatWorkload",
           "UploadWorkload", "ChainWorkload", "missing_ops", "mlp_hidden_for_mib",
           "mlp_params", "make_workload", "WORKLOADS"]


def missing_ops(*ops: str) -> list[str]:
    """The ops a workload needs that this catalog lacks."""
    return [o for o in ops if o not in CATALOG]


class GraphBuilder:
    """Numbers nodes in order and collects inline tensors for one request."""

    def __init__(self, sent: set[str] | None = None) -> None:
        self.nodes: list[WireNode] = []
        self.tensors: list[pb.TensorData] = []
        self.hashes: list[str] = []
        self._sent = sent if sent is not None else set()
        self._seen: dict[str, int] = {}

    def op(self, name: str, *inputs: int, **attrs) -> int:
        self.nodes.append(WireNode(len(self.nodes), name, tuple(inputs), attrs))
        return len(self.nodes) - 1

    def leaf(self, arr: np.ndarray, digest: str | None = None) -> int:
        arr = codec.contiguous(arr)
        digest = digest or codec.array_hash(arr)
        if digest in self._seen:
            return self._seen[digest]
        nid = self.op("leaf", hash=digest, dtype=arr.dtype.name, shape=tuple(arr.shape))
        self._seen[digest] = nid
        self.hashes.append(digest)
        if digest not in self._sent:
            self.tensors.append(codec.encode_array(arr, digest))
        return nid

    def leaf_ref(self, digest: str, dtype: str, shape: tuple[int, ...]) -> int:
        """A leaf the cluster holds (a kept result): named by hash, never sent."""
        if digest in self._seen:
            return self._seen[digest]
        nid = self.op("leaf", hash=digest, dtype=dtype, shape=tuple(shape))
        self._seen[digest] = nid
        self.hashes.append(digest)
        return nid

    def const(self, value) -> int:
        return self.op("const", value=value)

    def grad(self, out: int, wrt: int, seed_dtype: str = "float32") -> int:
        seed = self.op("full", shape=(), value=1.0, dtype=seed_dtype)
        return self.op("grad", out, seed, wrt, n=1)

    def request(self, targets: list[int]) -> pb.ComputeRequest:
        return codec.encode_request(self.nodes, self.tensors, targets,
                                    request_id=uuid.uuid4().hex)


@dataclass
class Workload:
    """The base: a name, an RNG, and the set of hashes sent so far."""

    seed: int = 0
    sent: set[str] = field(default_factory=set)
    name: str = "workload"
    needs: tuple[str, ...] = ()
    salt: int | None = None  # None: random, so fresh inputs never hit an earlier run's cache

    def __post_init__(self) -> None:
        if self.salt is None:
            self.salt = secrets.randbits(48)
        self.rng = np.random.default_rng((self.seed, self.salt))

    def builder(self) -> GraphBuilder:
        return GraphBuilder(self.sent)

    def next_request(self) -> pb.ComputeRequest:
        raise NotImplementedError

    def sent_ok(self, req: pb.ComputeRequest) -> None:
        """The call succeeded: the cluster now holds every leaf it carried."""
        self.sent.update(t.hash for t in req.tensors)

    def mark_lost(self) -> None:
        self.sent.clear()


def seed_graph(b: GraphBuilder, x: np.ndarray) -> tuple[int, int]:
    """((x * 2) ** 3).sum() and d/dx, as the SDK builds them for the tutorial."""
    xi = b.leaf(x)
    y = b.op("mul", xi, b.const(2))
    z = b.op("pow", y, b.const(3))
    out = b.op("sum", z, dim=None, keepdim=False)
    return out, b.grad(out, xi)


@dataclass
class SeedWorkload(Workload):
    """The tutorial's gradient call with a fresh 3x3 input each time (never a cache hit)."""

    name: str = "seed"

    def next_request(self) -> pb.ComputeRequest:
        b = self.builder()
        x = self.rng.standard_normal((3, 3)).astype(np.float32)
        _, g = seed_graph(b, x)
        return b.request([g])


def mlp_hidden_for_mib(mib: float, n_in: int = 784, n_out: int = 10) -> int:
    """Hidden width H of an n_in-H-H-n_out MLP whose float32 parameters take about `mib`."""
    target = mib * (1 << 20) / 4
    # H^2 + (n_in + n_out + 2) H + n_out = target
    b = n_in + n_out + 2
    return max(1, int((-b + (b * b + 4 * (target - n_out)) ** 0.5) / 2))


def mlp_params(hidden: int, rng: np.random.Generator, n_in: int = 784,
               n_out: int = 10) -> list[np.ndarray]:
    """W1, b1, W2, b2, W3, b3 in torch.nn.Linear layout (out_features, in_features)."""
    shapes = [(hidden, n_in), (hidden,), (hidden, hidden), (hidden,), (n_out, hidden),
              (n_out,)]
    out = []
    for s in shapes:
        fan_in = s[1] if len(s) == 2 else s[0]
        bound = 1.0 / np.sqrt(fan_in)
        out.append(rng.uniform(-bound, bound, s).astype(np.float32))
    return out


def mlp_graph(b: GraphBuilder, params: list, x: np.ndarray, y: np.ndarray,
              lr: float | None = None,
              digests: list[str] | None = None) -> tuple[int, list[int]]:
    """Loss and either the gradients (lr None) or the SGD-updated parameters. A parameter
    is an array (with its hash in `digests`, if known: a client hashes a tensor once, as
    the SDK does), or a (hash, dtype, shape) reference to a tensor the cluster keeps."""
    digests = digests or [None] * len(params)
    p = [b.leaf(a, d) if isinstance(a, np.ndarray) else b.leaf_ref(*a)
         for a, d in zip(params, digests)]
    h = b.op("tanh", b.op("linear", b.leaf(x), p[0], p[1]))
    h = b.op("tanh", b.op("linear", h, p[2], p[3]))
    logits = b.op("linear", h, p[4], p[5])
    loss = b.op("cross_entropy", logits, b.leaf(y), ignore_index=-100, reduction="mean",
                label_smoothing=0.0)
    seed = b.op("full", shape=(), value=1.0, dtype="float32")
    grads = [b.op("grad", loss, seed, pi, n=1) for pi in p]
    if lr is None:
        return loss, grads
    step = b.const(float(lr))
    return loss, [b.op("sub", pi, b.op("mul", g, step)) for pi, g in zip(p, grads)]


MLP_OPS = ("linear", "tanh", "cross_entropy", "grad", "sub", "mul", "full")


@dataclass
class MlpWorkload(Workload):
    """MLP gradient calls: parameters reused across calls (dedup), a fresh batch each."""

    name: str = "mlp"
    param_mib: float = 1.0
    batch: int = 64
    hidden: int = 0
    needs: tuple[str, ...] = MLP_OPS

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden = self.hidden or mlp_hidden_for_mib(self.param_mib)
        self.params = mlp_params(self.hidden, np.random.default_rng(1234))
        self.param_hashes = [codec.array_hash(a) for a in self.params]

    @property
    def param_bytes(self) -> int:
        return sum(a.nbytes for a in self.params)

    def batch_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        x = self.rng.standard_normal((self.batch, 784)).astype(np.float32)
        y = self.rng.integers(0, 10, self.batch).astype(np.int64)
        return x, y

    def next_request(self) -> pb.ComputeRequest:
        b = self.builder()
        x, y = self.batch_arrays()
        loss, grads = mlp_graph(b, self.params, x, y, digests=self.param_hashes)
        return b.request([loss, *grads])


@dataclass
class RepeatWorkload(Workload):
    """Exact repeats: `pool` fixed seed-sized calls, leaves by hash after the first."""

    name: str = "repeat"
    pool: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        self.inputs = [np.random.default_rng(10_000 + i).standard_normal((3, 3))
                       .astype(np.float32) for i in range(self.pool)]
        self.i = 0

    def next_request(self) -> pb.ComputeRequest:
        b = self.builder()
        _, g = seed_graph(b, self.inputs[self.i % self.pool])
        self.i += 1
        return b.request([g])


@dataclass
class UploadWorkload(Workload):
    """A fresh large tensor each call (its first element is a counter) and its sum."""

    name: str = "upload"
    mib: float = 16.0

    def __post_init__(self) -> None:
        super().__post_init__()
        n = max(1, int(self.mib * (1 << 20) // 4))
        self.base = self.rng.standard_normal(n).astype(np.float32)
        self.i = 0

    def next_request(self) -> pb.ComputeRequest:
        self.i += 1
        self.base[0] = float(self.i)  # the rest of base is drawn with the salt: unique
        b = self.builder()
        s = b.op("sum", b.leaf(self.base), dim=None, keepdim=False)
        return b.request([s])


@dataclass
class ChainWorkload(Workload):
    """`ops` elementwise ops over `numel` float32 elements, then sum and d/dx; a share
    `hit_ratio` of the calls repeat one of a few fixed inputs exactly."""

    name: str = "chain"
    ops: int = 16
    numel: int = 1024
    hit_ratio: float = 0.0
    pool: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fixed = [np.random.default_rng(20_000 + i).standard_normal(self.numel)
                      .astype(np.float32) for i in range(self.pool)]
        self.fresh = self.rng.standard_normal(self.numel).astype(np.float32)
        self.i = 0

    def next_request(self) -> pb.ComputeRequest:
        self.i += 1
        if self.rng.random() < self.hit_ratio:
            x = self.fixed[self.i % self.pool]
        else:
            self.fresh[0] = float(self.i)  # fresh is drawn with the salt: unique
            x = self.fresh
        b = self.builder()
        xi = h = b.leaf(x)
        kinds = ("mul", "add", "sub")
        for k in range(self.ops):
            h = b.op(kinds[k % 3], h, b.const(1.0 + 1.0 / (k + 2)))
        out = b.op("sum", h, dim=None, keepdim=False)
        return b.request([b.grad(out, xi)])


WORKLOADS = {"seed": SeedWorkload, "mlp": MlpWorkload, "repeat": RepeatWorkload,
             "upload": UploadWorkload, "chain": ChainWorkload}


def make_workload(name: str, seed: int = 0, **options) -> Workload:
    """A workload by name; options it does not take are ignored."""
    cls = WORKLOADS[name]
    fields = set(cls.__dataclass_fields__)
    return cls(seed=seed, **{k: v for k, v in options.items() if k in fields})
