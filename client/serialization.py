"""remotegrad.serialization: the import path of torch.serialization (save, load and the
weights-only allowlist)."""

from ._pickled import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals
from ._serialization import load, save

DEFAULT_PROTOCOL = 2

__all__ = ["DEFAULT_PROTOCOL", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "load", "safe_globals", "save"]
