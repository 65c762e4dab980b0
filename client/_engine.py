"""The SDK's one door into the worker's engine, imported on first use (never by
`import remotegrad`): the embedded mode's evaluation of client graphs
(`connect("local")`, leaves given as arrays) and of ComputeRequests, and the engine's
lowering of gradient nodes, which names the grad_fn of a `create_graph=True` gradient as
the engine will build it (see _derivative)."""

from __future__ import annotations

from remotegrad.worker.compute import (
    MemoryTensorStore,
    MissingTensorError,
    compute,
    evaluate,
    evaluate_planned,
)
from remotegrad.worker.engine import Graph, lower, run_planned

__all__ = ["Graph", "MemoryTensorStore", "MissingTensorError", "compute", "evaluate",
           "evaluate_planned", "lower", "run_planned"]
