"""Memory a computation needs, estimated from shapes alone before anything is allocated.

The worker runs a graph in topological order and frees each intermediate right after
its last use, so the estimate walks the same order and keeps the largest sum of live
tensors (leaves included). Gradient nodes expand on the worker into many ordinary nodes,
some as large as the forward's biggest; they are lowered here the same way (symbolically:
shapes, no arrays) so that a gradient which would not fit is refused before it runs.

The gateway checks the estimate against its --max-memory-bytes and the registered workers'
memory limits; each worker checks it against its own --memory-limit before it fetches or
transfers any leaf.

Besides the tensors themselves it counts what running them costs in memory: the
temporaries of ops that gather windows (conv2d, max_pool2d and their gradients; see
catalog/conv.py), the answer (each listed target encoded once per listing, so naming one
target K times costs K copies), and the graph itself (NODE_BYTES per node: its decoded
wire form, the built, lowered and compiled graphs, measured on a worker's RSS).
"""

from __future__ import annotations

from remotegrad.proto.catalog import OpError
from remotegrad.proto.codec import TooLargeError
from remotegrad.proto.catalog.conv import conv_scratch_bytes, pool_scratch_bytes
from remotegrad.proto.nodes import WireNode
from . import engine
from .engine.cost import graph_flops

# Memory per node of the built and of the lowered graph (a graph without gradients counts
# twice): a worker's RSS grew by 2-3.8 KB per wire node on chains of 100,000 (neg, reshape,
# sum), plus what gRPC holds; tests/security/test_estimates.py checks it on a real worker.
NODE_BYTES = 3 << 10
# Ops whose forward allocates temporaries besides its result: their size from shapes.
SCRATCH = {"conv2d": conv_scratch_bytes, "conv2d_input_grad": conv_scratch_bytes,
           "conv2d_weight_grad": conv_scratch_bytes, "max_pool2d": pool_scratch_bytes,
           "max_pool2d_backward": pool_scratch_bytes, "max_pool2d_select": pool_scratch_bytes,
           # gelu's own forward (a composite run whole): three temporaries of its size
           # (traced peak: 3.7-4.0 times the result)
           "gelu": lambda op, metas, attrs: 3 * metas[0].nbytes}


def scratch_bytes(g: engine.Graph, n: int) -> int:
    """Bytes node `n`'s forward allocates besides its result (0 for most ops)."""
    rule = SCRATCH.get(g.ops[n])
    return rule(g.ops[n], [g.metas[i] for i in g.inputs[n]], g.attrs[n]) if rule else 0


def peak_bytes(g: engine.Graph, targets: list[int]) -> int:
    """The largest number of bytes live at once when `targets` are computed."""
    order = g.needed(targets)
    last: dict[int, int] = {}
    for pos, n in enumerate(order):
        for i in g.inputs[n]:
            last[i] = pos
    keep = set(targets)
    dies: dict[int, list[int]] = {}
    for i, pos in last.items():
        if i not in keep:
            dies.setdefault(pos, []).append(i)
    live = peak = 0
    for pos, n in enumerate(order):
        live += g.metas[n].nbytes
        peak = max(peak, live + scratch_bytes(g, n))
        for d in dies.get(pos, ()):
            live -= g.metas[d].nbytes
    # The targets are still alive while the answer is encoded: one copy per listing.
    return max(peak, live + sum(g.metas[t].nbytes for t in targets))


def estimate(nodes: list[WireNode], targets: list[int]) -> tuple:
    """(largest tensor's Meta, peak bytes) of the graph as the worker will run it."""
    return of_plan(engine.plan(nodes, targets)[0])


def of_plan(plan: engine.Plan) -> tuple:
    """estimate() of a planned graph, worked out once per structure (kept in the plan)."""
    found = plan.memo.get("estimate")
    if found is None:
        try:
            low, lt = plan.lowered()
        except (OpError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            # The worker would fail the same way: a gradient its rules cannot form.
            raise OpError(f"cannot form the gradient: {type(e).__name__}: {e}") from None
        graph = NODE_BYTES * (len(plan.graph) + len(low))
        found = plan.memo["estimate"] = (max(low.metas, key=lambda m: m.nbytes),
                                         peak_bytes(low, lt) + graph)
    return found


def flops_of_plan(plan: engine.Plan) -> int:
    """The floating-point operations the planned graph costs as the worker runs it
    (engine/cost.py), worked out once per structure."""
    found = plan.memo.get("flops")
    if found is None:
        of_plan(plan)  # the same errors for a gradient its rules cannot form
        found = plan.memo["flops"] = graph_flops(*plan.lowered())
    return found


def check_flops(plan: engine.Plan, limit: float, where: str) -> int:
    """The plan's cost; TooLargeError (RESOURCE_EXHAUSTED) when it is over `limit` (0: none)."""
    flops = flops_of_plan(plan)
    if limit and flops > limit:
        raise TooLargeError(
            f"the computation needs about {flops:.3g} floating-point operations (estimated "
            f"from shapes before running, gradients included), over {where} limit of "
            f"{limit:.3g} (--max-flops)")
    return flops


def human_bytes(n: int) -> str:
    """`n` bytes as people read them: 1536 → '1.5 KiB'."""
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in _UNITS:
        size /= 1024
        if size < 1024 or unit == _UNITS[-1]:
            break
    return f"{size:.1f} {unit}"


_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def describe_bytes(n: int) -> str:
    """'1610612736 bytes (1.5 GiB)': exact for tools, readable for people."""
    return f"{n} bytes" if n < 1024 else f"{n} bytes ({human_bytes(n)})"
