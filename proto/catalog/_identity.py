"""The identity of a node's attributes, for every key that names a graph's structure:
the engine's CSE and compiled-program cache, the gateway's estimate cache and the result
fingerprint. Python's == is not identity: 0.0 == -0.0 (yet 1/x tells them apart) and
nan != nan (a key holding one never finds itself again). Floats are keyed by float.hex,
exact and distinct for -0.0, with one key for every NaN (their payloads are not carried).
Types are part of the key: const 2 (int64) and 2.0 (float64) are different nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def value_key(v: Any) -> Any:
    if type(v) is float:
        return ("f", v.hex())
    if isinstance(v, (float, np.floating)):  # numpy's float scalars: -0.0 apart too
        return (type(v).__name__, float(v).hex())
    if type(v) is tuple:
        return ("t", tuple(value_key(x) for x in v))
    return (type(v).__name__, v)


def attrs_key(attrs: dict[str, Any]) -> tuple:
    """A hashable key for an attribute dict, independent of its order, equal exactly
    when every value is the same (see module doc)."""
    return tuple(sorted((k, value_key(v)) for k, v in attrs.items()))
