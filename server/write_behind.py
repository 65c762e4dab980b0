"""The gateway's write-behind queue is proto/write_behind.py's (the worker's too)."""

from remotegrad.proto.write_behind import WriteBehind

__all__ = ["WriteBehind"]
