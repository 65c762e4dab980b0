"""The peak-memory estimate lives with the worker (remotegrad.worker.estimate), which
checks it against its own memory limit; the gateway uses the same code."""

from remotegrad.worker.estimate import (Estimates, describe_bytes, estimate, human_bytes,
                                        peak_bytes)

__all__ = ["Estimates", "describe_bytes", "estimate", "human_bytes", "peak_bytes"]
