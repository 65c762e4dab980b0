"""The peak-memory and cost estimates live with the worker (remotegrad.worker.estimate),
which checks them against its own limits; the gateway uses the same code."""

from remotegrad.worker.estimate import (check_flops, describe_bytes, estimate, flops_of_plan,
                                        human_bytes, of_plan, peak_bytes)

__all__ = ["check_flops", "describe_bytes", "estimate", "flops_of_plan", "human_bytes",
           "of_plan", "peak_bytes"]
