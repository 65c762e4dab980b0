"""Checkpoints that interoperate with PyTorch (issue 18 item 4): what remotegrad.save writes,
real PyTorch's torch.load reads (weights_only=True), and what torch.save writes, remotegrad
reads; the weights-only unpickler refuses what PyTorch's refuses, with PyTorch's words; bad
archives (path traversal, storages too small for their tensors) are refused cleanly; files of
older remotegrad versions still load; safetensors files both ways."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections import Counter, OrderedDict

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(18)
DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def _array(dtype: str, shape) -> np.ndarray:
    return (R.standard_normal(shape) * 4).astype(dtype)


def _pair_models():
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    ours = rg.nn.Sequential(rg.nn.Linear(4, 5), rg.nn.Tanh(), rg.nn.Linear(5, 3))
    ours.load_state_dict({k: rg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def _train(model, lib, opt, steps: int, seed: int):
    data = np.random.default_rng(seed)
    for _ in range(steps):
        x, y = data.standard_normal((6, 4)), data.standard_normal((6, 3))
        opt.zero_grad()
        lib.nn.functional.mse_loss(model(lib.tensor(x, dtype=lib.float32)),
                                   lib.tensor(y, dtype=lib.float32)).backward()
        opt.step()


def _same_params(ours, theirs):
    for (k, a), (j, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert k == j
        close(a, b, rtol=1e-5, atol=1e-6, what=k)


# ------------------------------------------------------------ remotegrad -> PyTorch


def test_tensors_of_every_dtype_and_shape_load_in_pytorch(tmp_path):
    tensors = {f"{d}{i}": _array(d, shape) for d in DTYPES
               for i, shape in enumerate([(), (0, 3), (2, 3, 4)])}
    ours = {k: rg.tensor(v) for k, v in tensors.items()}
    ours["transposed"] = rg.tensor(_array("float32", (3, 5))).t()  # not contiguous
    ours["leaf"] = rg.tensor([1.0, -2.0], requires_grad=True)
    rg.save(ours, tmp_path / "t.pt")
    back = torch.load(tmp_path / "t.pt")  # weights_only=True, PyTorch's default
    assert list(back) == list(ours)
    for key, value in ours.items():
        close(value, back[key], rtol=0, atol=0, what=key)
    assert back["leaf"].requires_grad and not back["float320"].requires_grad
    # the records are 64-byte aligned as PyTorch writes them: mmap loading works
    close(ours["int642"], torch.load(tmp_path / "t.pt", mmap=True)["int642"], 0, 0)


def test_state_dict_and_optimiser_state_resume_in_pytorch(tmp_path):
    ours, theirs = _pair_models()
    opt_o = rg.optim.Adam(ours.parameters(), lr=0.01, weight_decay=0.1)
    _train(ours, rg, opt_o, 3, seed=1)
    rg.save({"model": ours.state_dict(), "optim": opt_o.state_dict(), "epoch": 3,
             "dtype": rg.float64, "size": rg.Size([2, 3])}, tmp_path / "ck.pt")
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert ck["epoch"] == 3 and ck["dtype"] is torch.float64 and ck["size"] == torch.Size([2, 3])
    assert type(ck["size"]) is torch.Size
    assert list(ck["model"]) == list(theirs.state_dict())
    theirs.load_state_dict(ck["model"])
    opt_t = torch.optim.Adam(theirs.parameters(), lr=0.01, weight_decay=0.1)
    opt_t.load_state_dict(ck["optim"])
    state = opt_t.state_dict()["state"]
    assert sorted(state) == [0, 1, 2, 3] and float(state[0]["step"]) == 3.0
    _same_params(ours, theirs)
    _train(ours, rg, opt_o, 2, seed=2)  # both resume from the same moments
    _train(theirs, torch, opt_t, 2, seed=2)
    _same_params(ours, theirs)


def test_parameters_and_shared_tensors_stay_so_in_pytorch(tmp_path):
    w = rg.nn.Parameter(rg.tensor(_array("float32", (3, 2))))
    t = rg.tensor(_array("float64", (4,)))
    buffer = io.BytesIO()
    rg.save({"w": w, "again": w, "t": t, "t2": t}, buffer)
    back = torch.load(io.BytesIO(buffer.getvalue()))
    assert type(back["w"]) is torch.nn.Parameter and back["w"].requires_grad
    assert back["again"] is back["w"]
    assert back["t"].untyped_storage().data_ptr() == back["t2"].untyped_storage().data_ptr()
    assert zipfile.ZipFile(buffer).namelist()[0] == "archive/data.pkl"  # as torch.save names it


# ------------------------------------------------------------ PyTorch -> remotegrad


def test_what_pytorch_saves_loads_here(tmp_path):
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    obj = {"base": base, "view": base[1:, ::2], "t": base.t(), "row": base[2],
           "expanded": torch.tensor([1.5, -2.0]).expand(3, 2),
           **{d: torch.from_numpy(_array(d, (2, 3))) for d in DTYPES},
           "scalar": torch.tensor(7), "empty": torch.zeros(0, 3),
           "param": torch.nn.Parameter(torch.ones(2)), "grad": torch.ones(2).requires_grad_(),
           "size": torch.Size([1, 2]), "dtype": torch.int16, "od": OrderedDict(a=1),
           "plain": [(1, 2.5, "s", None, True, b"raw", 1 + 2j)], "set": {1, 2},
           "counter": Counter("aab")}
    torch.save(obj, tmp_path / "theirs.pt")
    back = rg.load(tmp_path / "theirs.pt")
    assert list(back) == list(obj)
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            close(back[key], value, rtol=0, atol=0, what=key)
            assert back[key].requires_grad == value.requires_grad, key
        elif key != "dtype":
            assert back[key] == value, key
    assert isinstance(back["param"], rg.nn.Parameter)
    assert back["dtype"] is rg.int16 and type(back["size"]) is rg.Size
    assert type(back["od"]) is OrderedDict and type(back["counter"]) is Counter


def test_tensor_attributes_pytorch_saved_are_dropped_with_a_warning(tmp_path):
    t, p = torch.ones(2), torch.nn.Parameter(torch.zeros(3))
    t.note, p.tag = "kept by PyTorch", 5  # _rebuild_from_type_v2 / _rebuild_parameter_with_state
    torch.save({"t": t, "p": p}, tmp_path / "attrs.pt")
    with pytest.warns(UserWarning, match="hold no Python attributes") as warned:
        back = rg.load(tmp_path / "attrs.pt")
    assert sorted(str(w.message).split("'")[-2] for w in warned) == ["note", "tag"]
    close(back["t"], t, 0, 0)
    assert isinstance(back["p"], rg.nn.Parameter) and back["p"].requires_grad


def test_pytorch_training_state_resumes_here(tmp_path):
    ours, theirs = _pair_models()
    opt_t = torch.optim.Adam(theirs.parameters(), lr=0.01)
    _train(theirs, torch, opt_t, 3, seed=3)
    torch.save({"model": theirs.state_dict(), "optim": opt_t.state_dict()}, tmp_path / "c.pt")
    ck = rg.load(tmp_path / "c.pt", map_location="cpu")
    assert hasattr(ck["model"], "_metadata")  # PyTorch's state_dict attribute (a BUILD)
    ours.load_state_dict(ck["model"])
    opt_o = rg.optim.Adam(ours.parameters(), lr=0.01)
    opt_o.load_state_dict(ck["optim"])
    _same_params(ours, theirs)
    _train(ours, rg, opt_o, 2, seed=4)
    _train(theirs, torch, opt_t, 2, seed=4)
    _same_params(ours, theirs)


def test_a_big_endian_archive_loads_as_pytorch_loads_it(tmp_path):
    values = _array("float32", (3, 4))
    torch.save({"x": torch.from_numpy(values)}, tmp_path / "le.pt")
    with zipfile.ZipFile(tmp_path / "le.pt") as src, \
            zipfile.ZipFile(tmp_path / "be.pt", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            dst.writestr(info.filename.replace("le/", "be/"), data)
    for lib in (rg, torch):
        assert np.array_equal(lib.load(tmp_path / "be.pt")["x"].numpy(), values)


# ------------------------------------------------------------ weights_only


def _archive(path, pickled: bytes, storages=(), folder="archive", names=None):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{folder}/data.pkl", pickled)
        zf.writestr(f"{folder}/byteorder", b"little")
        for key, data in storages:
            zf.writestr(f"{folder}/data/{key}", data)
        zf.writestr(f"{folder}/version", b"3\n")
        for name in names or ():
            zf.writestr(name, b"x")


def _global_call(module: str, name: str, arg: str) -> bytes:
    """A pickle calling module.name(arg): what a malicious checkpoint holds."""
    return (pickle.PROTO + b"\x02" + pickle.GLOBAL + f"{module}\n{name}\n".encode()
            + _str(arg) + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


def _refusals(path, **kwargs):
    messages = []
    for lib in (rg, torch):
        with pytest.raises(pickle.UnpicklingError) as info:
            lib.load(path, **kwargs)
        messages.append(str(info.value))
    return messages


@pytest.mark.parametrize("module,name", [("builtins", "exec"), ("subprocess", "getoutput"),
                                         ("os", "system"), ("webbrowser", "open")])
def test_an_arbitrary_global_is_refused_with_pytorchs_message(tmp_path, module, name):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()" if name == "exec" else f"touch {marker}"
    _archive(tmp_path / "evil.pt", _global_call(module, name, code))
    ours, theirs = _refusals(tmp_path / "evil.pt")
    assert ours == theirs
    assert ours.startswith("Weights only load failed.")
    assert not marker.exists()
    _archive(tmp_path / "evil2.pt", _global_call(module, name, code))
    with rg.serialization.safe_globals([]):  # an empty allowlist changes nothing
        assert _refusals(tmp_path / "evil2.pt", weights_only=True) == [ours, theirs]
    assert not marker.exists()


def test_building_anything_but_an_ordered_dict_is_refused_as_pytorch(tmp_path):
    # [] then BUILD {'x': 1}: PyTorch's unpickler builds only Tensor, Parameter,
    # OrderedDict or allowlisted types
    built = (pickle.PROTO + b"\x02" + pickle.EMPTY_LIST + pickle.EMPTY_DICT + _str("x")
             + pickle.BININT1 + b"\x01" + pickle.SETITEM + pickle.BUILD + pickle.STOP)
    _archive(tmp_path / "b.pt", built)
    ours, theirs = _refusals(tmp_path / "b.pt")
    assert ours == theirs and "Can only build" in ours


def test_a_whole_module_is_refused_by_both_and_loads_with_weights_only_false(tmp_path):
    ours, _ = _pair_models()
    rg.save(ours, tmp_path / "m.pt")  # PyTorch's format, remotegrad's classes named in it
    mine, pytorch = _refusals(tmp_path / "m.pt")
    assert mine == pytorch and "GLOBAL remotegrad.nn." in mine
    back = rg.load(tmp_path / "m.pt", weights_only=False)
    assert type(back) is rg.nn.Sequential and repr(back) == repr(ours)
    x = rg.tensor(_array("float32", (2, 4)))
    assert rg.equal(back(x), ours(x))


# ------------------------------------------------------------ bad archives


def _int(v: int) -> bytes:
    if v < 1 << 31:
        return pickle.BININT + struct.pack("<i", v)
    raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(raw)]) + raw


def _str(s: str) -> bytes:
    raw = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def _tuple(items) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _tensor_pickle(key: str, numel: int, size, stride, offset: int = 0) -> bytes:
    """{'x': tensor} pickled by hand as torch.save pickles it, with any storage id."""
    pid = _tuple([_str("storage"), pickle.GLOBAL + b"torch\nFloatStorage\n", _str(key),
                  _str("cpu"), _int(numel)]) + pickle.BINPERSID
    hooks = pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE
    args = _tuple([pid, _int(offset), _tuple(map(_int, size)), _tuple(map(_int, stride)),
                   pickle.NEWFALSE, hooks])
    tensor = pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n" + args + pickle.REDUCE
    return (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + _str("x") + tensor + pickle.SETITEM
            + pickle.STOP)


def test_the_hand_made_tensor_pickle_is_what_pytorch_reads(tmp_path):
    data = np.arange(6, dtype="<f4")
    _archive(tmp_path / "ok.pt", _tensor_pickle("0", 6, (2, 3), (3, 1)),
             [("0", data.tobytes())])
    for lib in (rg, torch):
        assert lib.load(tmp_path / "ok.pt")["x"].numpy().tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("case", ["record_too_small", "view_past_storage", "offset_past",
                                  "huge_expansion", "key_traversal"])
def test_a_storage_that_does_not_hold_its_tensor_is_refused(tmp_path, case):
    six = np.arange(6, dtype="<f4").tobytes()
    pickled, storages, message = {
        "record_too_small": (_tensor_pickle("0", 10 ** 12, (10 ** 6,), (1,)), [("0", six)],
                             "holds 24 bytes, its storage declares 4000000000000"),
        "view_past_storage": (_tensor_pickle("0", 6, (4, 3), (3, 1)), [("0", six)],
                              "does not fit its storage of 6 elements"),
        "offset_past": (_tensor_pickle("0", 6, (2,), (1,), offset=5), [("0", six)],
                        "does not fit its storage"),
        "huge_expansion": (_tensor_pickle("0", 6, (1 << 20, 1 << 20), (0, 0)), [("0", six)],
                           "does not fit its storage"),
        "key_traversal": (_tensor_pickle("../../0", 6, (6,), (1,)), [("0", six)],
                          "is not a record name"),
    }[case]
    _archive(tmp_path / "bad.pt", pickled, storages)
    with pytest.raises(RuntimeError, match=message):
        rg.load(tmp_path / "bad.pt")


@pytest.mark.parametrize("name", ["archive/../../etc/passwd", "/etc/passwd",
                                  "archive/data/..\\..\\x", "other/data.pkl", "archive/./x"])
def test_an_archive_with_a_stray_path_is_refused(tmp_path, name):
    six = np.arange(6, dtype="<f4").tobytes()
    _archive(tmp_path / "bad.pt", _tensor_pickle("0", 6, (6,), (1,)), [("0", six)],
             names=[name])
    with pytest.raises(RuntimeError, match="not a checkpoint: its records|is not a plain path"):
        rg.load(tmp_path / "bad.pt")


def test_a_deflate_bomb_is_refused_before_it_is_expanded(tmp_path):
    zeros = bytes(64 << 20)  # 64 MiB of zeros deflate to about 64 KiB
    with zipfile.ZipFile(tmp_path / "bomb.pt", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", _tensor_pickle("0", len(zeros) // 4, (4,), (1,)))
        zf.writestr("archive/data/0", zeros)
    with pytest.raises(RuntimeError, match="compressed record 'archive/data/0' expands to "
                                           "67108864 bytes"):
        rg.load(tmp_path / "bomb.pt")
    # a deflated archive that expands as real data does still loads
    with zipfile.ZipFile(tmp_path / "deflated.pt", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", _tensor_pickle("0", 6, (2, 3), (3, 1)))
        zf.writestr("archive/data/0", np.arange(6, dtype="<f4").tobytes())
    assert rg.load(tmp_path / "deflated.pt")["x"].numpy().tolist() == [[0, 1, 2], [3, 4, 5]]


def test_what_is_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"hello world, not a zip")
    with pytest.raises(RuntimeError, match="not a zip archive written by torch.save"):
        rg.load(tmp_path / "junk.pt")
    torch.save(torch.ones(2), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match="pre-1.6 format"):
        rg.load(tmp_path / "old.pt")


# ------------------------------------------------------------ older remotegrad files


def test_files_of_older_remotegrad_versions_still_load(tmp_path):
    # the .npz layout that versions before this one wrote: a JSON structure and arrays
    w = _array("float32", (2, 3))
    structure = {"dict": [[{"value": "w"}, {"tensor": "t0", "requires_grad": True,
                                            "parameter": True}],
                          [{"value": "epoch"}, {"value": 4}],
                          [{"value": "shape"}, {"tuple": [{"value": 2}, {"value": 3}]}]],
                 "ordered": False}
    with open(tmp_path / "old.pt", "wb") as fh:
        np.savez(fh, t0=w, __structure__=np.frombuffer(json.dumps(structure).encode(), np.uint8))
    back = rg.load(tmp_path / "old.pt")
    assert back["epoch"] == 4 and back["shape"] == (2, 3)
    assert isinstance(back["w"], rg.nn.Parameter) and np.array_equal(back["w"].detach().numpy(), w)
    # and a whole object pickled with its tensors kept out as arrays
    buffer = io.BytesIO()

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            return ("tensor", "t0", False, False) if obj is w else None

    Writer(buffer, 2).dump({"w": w, "dtype": rg.float16})
    with open(tmp_path / "old2.pt", "wb") as fh:
        np.savez(fh, t0=w, __pickle__=np.frombuffer(buffer.getvalue(), np.uint8))
    back = rg.load(tmp_path / "old2.pt")
    assert back["dtype"] is rg.float16 and np.array_equal(back["w"].detach().numpy(), w)


# ------------------------------------------------------------ safetensors


def test_safetensors_files_both_ways(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    ours, theirs = _pair_models()
    st.save_file(theirs.state_dict(), tmp_path / "theirs.safetensors")
    back = rg.serialization.load_safetensors(tmp_path / "theirs.safetensors")
    assert sorted(back) == sorted(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        close(back[key], value, rtol=0, atol=0, what=key)
    state = {**ours.state_dict(), "steps": rg.tensor([3, 4]), "mask": rg.tensor([True])}
    rg.serialization.save_safetensors(state, tmp_path / "ours.safetensors",
                                      metadata={"format": "pt"})
    loaded = st.load_file(tmp_path / "ours.safetensors")
    assert sorted(loaded) == sorted(state)
    for key, value in state.items():
        close(value, loaded[key], rtol=0, atol=0, what=key)
    st.save_file({"x": torch.ones(2, dtype=torch.bfloat16)}, tmp_path / "bf16.safetensors")
    with pytest.raises(RuntimeError, match="bfloat16"):
        rg.serialization.load_safetensors(tmp_path / "bf16.safetensors")
    with pytest.raises(RuntimeError, match="load_safetensors"):
        rg.load(tmp_path / "ours.safetensors")
