"""The peak-memory estimate lives with the worker (remotegrad.worker.estimate), which
checks it against its own memory limit; the gateway uses the same code."""

from remotegrad.worker.estimate import (describe_bytes, estimate, human_bytes, of_plan,
                                        peak_bytes)

__all__ = ["describe_bytes", "estimate", "human_bytes", "of_plan", "peak_bytes"]
