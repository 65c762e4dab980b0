"""save / load in PyTorch's own checkpoint format, so that real PyTorch reads what remotegrad
writes and remotegrad reads what PyTorch writes.

A file is a zip archive (stored, not compressed) with every record under one folder, named
after the file (`archive` for a file object), as torch.save writes it:

    <folder>/data.pkl        the object, pickled (protocol 2); tensors are
                             torch._utils._rebuild_tensor_v2 over a persistent id
                             ('storage', torch.FloatStorage, '<key>', 'cpu', numel)
    <folder>/data/<key>      each storage's raw little-endian bytes, 64-byte aligned
    <folder>/byteorder       'little';  <folder>/version '3';  .format_version, .storage_alignment

load (weights_only=True by default, as PyTorch 2.6+) admits only what PyTorch's weights-only
unpickler admits (_pickled.py). Files of older remotegrad versions (NumPy .npz archives) are
recognised by their records and still load."""

from __future__ import annotations

import io
import json
import os
import secrets
import struct
import zipfile
from collections import OrderedDict
from typing import IO, Any

import numpy as np

from . import _pickled
from ._tensor import Tensor

_ALIGN = 64
_VERSION = 3  # PyTorch's kProducedFileFormatVersion for these records
_LEGACY = ("__structure__.npy", "__pickle__.npy")
_MAX_RATIO = 100  # how far a compressed record may expand (real tensor data: a few times)


def _put(zf: zipfile.ZipFile, name: str, data: bytes | memoryview) -> None:
    # Pad the local header's extra field so that the record's bytes start 64-byte aligned,
    # as PyTorch's writer does (mmap loads rely on it).
    offset = zf.fp.tell() + 30 + len(name.encode()) + 4
    if len(data) * 1.05 > zipfile.ZIP64_LIMIT:
        offset += 20  # the zip64 extra zipfile adds for large records
    pad = -offset % _ALIGN
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.extra = struct.pack("<HH", 0x4246, pad) + bytes(pad)
    zf.writestr(info, data)


def _folder_name(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        stem = os.path.splitext(os.path.basename(os.fspath(f)))[0]
        if stem and all(c.isalnum() or c in "_-." for c in stem):
            return stem
    return "archive"


def _write_archive(fh, folder: str, pickled: bytes, storages) -> None:
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        _put(zf, f"{folder}/data.pkl", pickled)
        _put(zf, f"{folder}/.format_version", b"1")
        _put(zf, f"{folder}/.storage_alignment", str(_ALIGN).encode())
        _put(zf, f"{folder}/byteorder", b"little")
        for key, data in storages:
            _put(zf, f"{folder}/data/{key}", data)
        _put(zf, f"{folder}/version", f"{_VERSION}\n".encode())
        _put(zf, f"{folder}/.data/serialization_id", f"{secrets.randbits(128):040d}".encode())


def save(obj: Any, f: str | os.PathLike | IO[bytes], pickle_module=None,
         pickle_protocol: int = 2, _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False) -> None:
    """Write `obj` (a tensor, a state_dict, an optimiser's state, a checkpoint dict, or a
    whole module) to a path or file, in PyTorch's zip format. The pre-1.6 format
    (_use_new_zipfile_serialization=False) is not written: the zip format is."""
    pickled, storages = _pickled.dumps(obj, pickle_protocol)
    folder = _folder_name(f)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _write_archive(fh, folder, pickled, storages)
        return
    buffer = io.BytesIO()  # offsets (for alignment) counted from the archive's start
    _write_archive(buffer, folder, pickled, storages)
    f.write(buffer.getvalue())


class _Archive:
    """A PyTorch checkpoint's records, every name checked before any is read."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf, names = zf, zf.namelist()
        folders = set()
        for name in names:
            parts = name.split("/")
            if name.startswith("/") or "\\" in name or len(parts) < 2 or \
                    any(p in ("", ".", "..") or ":" in p for p in parts):
                raise RuntimeError(f"not a checkpoint: the record {name!r} is not a plain "
                                   "path inside the archive's folder")
            folders.add(parts[0])
        if len(folders) != 1 or len(set(names)) != len(names):
            raise RuntimeError("not a checkpoint: its records are not all in one folder, "
                               "each once")
        self.folder = folders.pop()
        self.infos = {name[len(self.folder) + 1:]: zf.getinfo(name) for name in names}
        for info in self.infos.values():  # torch.save stores records: a deflate bomb is not one
            if info.compress_type != zipfile.ZIP_STORED and \
                    info.file_size > _MAX_RATIO * info.compress_size + (1 << 20):
                raise RuntimeError(f"not a checkpoint: the compressed record {info.filename!r} "
                                   f"expands to {info.file_size} bytes from "
                                   f"{info.compress_size}")
        if "data.pkl" not in self.infos:
            raise RuntimeError("not a checkpoint: no data.pkl record")
        self._check_version()
        self.order = self._byteorder()

    def read(self, record: str, limit: int | None = None) -> bytes:
        info = self.infos.get(record)
        if info is None:
            raise RuntimeError(f"not a checkpoint: no record {self.folder}/{record}")
        if limit is not None and info.file_size != limit:
            raise RuntimeError(f"not a checkpoint: {self.folder}/{record} holds "
                               f"{info.file_size} bytes, its storage declares {limit}")
        return self.zf.read(info)

    def _check_version(self) -> None:
        if "version" not in self.infos:
            return
        text = self.read("version")[:16].decode("ascii", "replace").strip()
        if not text.isdigit() or int(text) > _VERSION:
            raise RuntimeError(f"this checkpoint's format version {text!r} is newer than "
                               f"the ones remotegrad reads (up to {_VERSION})")

    def _byteorder(self) -> str:
        order = self.read("byteorder").decode("ascii", "replace") if "byteorder" in \
            self.infos else "little"
        if order not in ("little", "big"):
            raise RuntimeError(f"not a checkpoint: byteorder {order!r}")
        return "<" if order == "little" else ">"

    def storage(self, key: str, dtype: str, numel: int) -> np.ndarray:
        item = np.dtype(dtype).newbyteorder(self.order)
        return np.frombuffer(self.read(f"data/{key}", numel * item.itemsize), dtype=item)


def load(f: str | os.PathLike | IO[bytes], map_location=None, pickle_module=None, *,
         weights_only: bool | None = None, mmap=None, **kwargs) -> Any:
    """Read a checkpoint written by torch.save or remotegrad.save (or by older remotegrad
    versions). `map_location` and `mmap` are accepted and ignored: tensors load on this
    machine. weights_only (the default, as in PyTorch 2.6+) refuses any global PyTorch's
    weights-only unpickler refuses, with its message; weights_only=False loads whole
    objects, such as modules (only for files you trust)."""
    restricted = weights_only is not False
    with (open(f, "rb") if isinstance(f, (str, os.PathLike)) else _readable(f)) as fh:
        head = fh.read(8)
        fh.seek(0)
        if head[:4] != b"PK\x03\x04":
            raise _not_zip(head)
        with zipfile.ZipFile(fh) as zf:
            legacy = any(name in zf.namelist() for name in _LEGACY)
            if not legacy:
                archive = _Archive(zf)
                return _load_archive(archive, restricted)
        fh.seek(0)
        return _load_legacy(fh, restricted)


def _load_archive(archive: _Archive, restricted: bool) -> Any:
    try:
        return _pickled.loads(archive.read("data.pkl"), archive.storage, restricted)
    except _pickled.WeightsOnlyRefusal as refusal:
        raise type(refusal)(_weights_only_message(str(refusal))) from None


def _readable(f) -> io.BytesIO:
    return io.BytesIO(f.read())


def _not_zip(head: bytes) -> Exception:
    if head[:2] == b"\x80\x02":
        return RuntimeError("this checkpoint is in PyTorch's pre-1.6 format "
                            "(_use_new_zipfile_serialization=False), which remotegrad does "
                            "not read: save it again with torch.save's default format")
    if len(head) == 8 and struct.unpack("<Q", head)[0] < 1 << 27:
        return RuntimeError("not a torch.save checkpoint (a safetensors file? read it with "
                            "remotegrad.serialization.load_safetensors)")
    return RuntimeError("not a checkpoint: it is not a zip archive written by torch.save")


_UNSAFE = ("In PyTorch 2.6, we changed the default value of the `weights_only` argument in "
           "`torch.load` from `False` to `True`. Re-running `torch.load` with `weights_only` "
           "set to `False` will likely succeed, but it can result in arbitrary code "
           "execution. Do it only if you got the file from a trusted source.")
_DOCS = ("\n\nCheck the documentation of torch.load to learn more about types accepted by "
         "default with weights_only https://pytorch.org/docs/stable/generated/torch.load.html.")


def _weights_only_message(message: str) -> str:
    """torch.load's wording around the weights-only unpickler's message."""
    if "was not an allowed global by default." in message:
        return ("Weights only load failed. This file can still be loaded, to do so you have "
                "two options, \033[1mdo those steps only if you trust the source of the "
                f"checkpoint\033[0m. \n\t(1) {_UNSAFE}\n\t(2) Alternatively, to load with "
                "`weights_only=True` please check the recommended steps in the following "
                "error message.\n\tWeightsUnpickler error: " + message + _DOCS)
    text = f"Weights only load failed. {_UNSAFE}\n"
    if "is blocked" not in message:
        text += ("Please file an issue with the following so that we can make "
                 "`weights_only=True` compatible with your use case: WeightsUnpickler error: ")
    return text + "\n\n" + message + _DOCS


# ------------------------------------------------ files of older remotegrad versions


def _load_legacy(fh, restricted: bool) -> Any:
    with np.load(fh, allow_pickle=False) as archive:  # arrays only: never object arrays
        arrays = {k: archive[k] for k in archive.files}
    if "__pickle__" in arrays:
        try:
            return _pickled.loads_legacy(arrays.pop("__pickle__").tobytes(), arrays,
                                         restricted)
        except _pickled.WeightsOnlyRefusal as refusal:
            raise type(refusal)(_weights_only_message(str(refusal))) from None
    return _decode(json.loads(arrays.pop("__structure__").tobytes().decode()), arrays)


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
