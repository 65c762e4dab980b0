"""remotegrad.serialization: the import path of torch.serialization (save, load and the
weights-only allowlist), and safetensors files (save_safetensors / load_safetensors)."""

from ._pickled import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals
from ._safetensors import load_safetensors, save_safetensors
from ._serialization import load, save

DEFAULT_PROTOCOL = 2

__all__ = ["DEFAULT_PROTOCOL", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "load", "load_safetensors", "safe_globals", "save", "save_safetensors"]
