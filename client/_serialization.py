"""save / load: checkpoints of tensors and the containers state_dicts are made of, and (as
PyTorch) of whole objects such as an nn.Module.

A file is a NumPy `.npz` archive: one array per tensor plus a description of the rest.
Tensors, numbers, strings, None, lists, tuples and dicts are described in JSON: such a file
(a state_dict, an optimiser's state, a training checkpoint) holds no pickle. Anything else
(`save(model)`) is pickled with its tensors kept out of the pickle as arrays, and, as
PyTorch since 2.6, is only unpickled in full with `load(..., weights_only=False)`: the
default refuses any class not allowlisted with serialization.add_safe_globals."""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from typing import IO, Any

import numpy as np

from ._tensor import Tensor

_STRUCTURE = "__structure__"
_PICKLE = "__pickle__"


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, Tensor):
        key = f"t{len(arrays)}"
        arrays[key] = np.asarray(obj.detach()._value())
        from .nn import Parameter
        return {"tensor": key, "requires_grad": obj.requires_grad,
                "parameter": isinstance(obj, Parameter)}
    if isinstance(obj, np.ndarray):
        key = f"t{len(arrays)}"
        arrays[key] = obj
        return {"ndarray": key}
    if isinstance(obj, dict):
        return {"dict": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()],
                "ordered": isinstance(obj, OrderedDict)}
    if isinstance(obj, (list, tuple)):
        return {"list" if isinstance(obj, list) else "tuple": [_encode(v, arrays) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"not plain data: {type(obj).__name__}")


def _decode(obj: dict, arrays) -> Any:
    if "tensor" in obj:
        out = Tensor._from_array(np.array(arrays[obj["tensor"]]))
        if obj["parameter"]:
            from .nn import Parameter
            return Parameter(out, requires_grad=obj["requires_grad"])
        return out.requires_grad_(True) if obj["requires_grad"] else out
    if "ndarray" in obj:
        return np.array(arrays[obj["ndarray"]])
    if "dict" in obj:
        items = [(_decode(k, arrays), _decode(v, arrays)) for k, v in obj["dict"]]
        return OrderedDict(items) if obj["ordered"] else dict(items)
    if "list" in obj:
        return [_decode(v, arrays) for v in obj["list"]]
    if "tuple" in obj:
        return tuple(_decode(v, arrays) for v in obj["tuple"])
    return obj["value"]


def save(obj: Any, f: str | os.PathLike | IO[bytes], pickle_module=None,
         pickle_protocol: int = 2, _use_new_zipfile_serialization: bool = True) -> None:
    """Write `obj` (a state_dict, a checkpoint dict, or a whole module) to a path or file."""
    arrays: dict[str, np.ndarray] = {}
    try:
        structure = json.dumps(_encode(obj, arrays)).encode()
        arrays[_STRUCTURE] = np.frombuffer(structure, dtype=np.uint8)
    except TypeError:  # not plain data: pickled, as PyTorch stores it
        from ._pickled import dumps
        arrays = {}
        arrays[_PICKLE] = np.frombuffer(dumps(obj, arrays, pickle_protocol), dtype=np.uint8)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


def load(f: str | os.PathLike | IO[bytes], map_location=None, pickle_module=None, *,
         weights_only: bool | None = None, mmap=None, **kwargs) -> Any:
    """Read what `save` wrote. `map_location` is accepted and ignored (no devices here).
    A pickled object (a whole module) needs weights_only=False, as in PyTorch 2.6+, unless
    every class it names is allowlisted (serialization.add_safe_globals)."""
    if not isinstance(f, (str, os.PathLike)):
        f = io.BytesIO(f.read())
    with np.load(f, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    if _PICKLE in arrays:
        from ._pickled import loads
        return loads(arrays.pop(_PICKLE).tobytes(), arrays,
                     restricted=weights_only is not False)
    structure = json.loads(arrays.pop(_STRUCTURE).tobytes().decode())
    return _decode(structure, arrays)
