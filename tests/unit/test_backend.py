"""Backend selection, memory limits and host↔device transfers (worker/backend.py).

The CPU tests run everywhere. The GPU tests need CuPy and a visible CUDA GPU and skip
cleanly without them; `pytest tests/unit/test_backend.py` on a GPU machine runs them.
This module imports numpy, pytest, cupy (guarded) and remotegrad.worker.backend only: no
gRPC, protobuf or redis-py, which the GPU machine may lack.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from remotegrad.worker import backend as backends
from remotegrad.worker.backend import (PINNED_MIN_BYTES, BackendUnavailable, is_out_of_memory,
                                       numpy_backend, select)


def _gpu_state() -> tuple[object, int, str]:
    """(cupy or None, GPUs visible, why none)."""
    try:
        import cupy
    except Exception as e:  # noqa: BLE001  (not installed, or its CUDA libraries missing)
        return None, 0, f"CuPy is not importable ({type(e).__name__}: {e})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001
        return cupy, 0, f"no CUDA GPU visible ({type(e).__name__}: {e})"
    return cupy, n, "" if n else "no CUDA GPU visible"


CUPY, NGPU, WHY_NOT = _gpu_state()
needs_gpu = pytest.mark.skipif(NGPU == 0, reason=f"needs CuPy and a CUDA GPU: {WHY_NOT}")


# --- everywhere ------------------------------------------------------------------------
def test_numpy_is_the_default_and_moves_nothing(monkeypatch):
    monkeypatch.delenv("REMOTEGRAD_BACKEND", raising=False)
    for b in (select(), select("numpy"), select("NumPy", 3)):
        assert b is numpy_backend
        assert b.xp is np and b.name == "numpy" and b.memory_limit == 0
    a = np.arange(6.0).reshape(2, 3)[:, ::2]
    assert numpy_backend.to_device(a) is a and numpy_backend.to_host(a) is a
    with numpy_backend.scope():
        pass
    assert numpy_backend.info() == {"backend": "numpy", "memory_limit": 0}


def test_the_environment_names_the_backend(monkeypatch):
    monkeypatch.setenv("REMOTEGRAD_BACKEND", "numpy")
    assert select().name == "numpy"
    monkeypatch.setenv("REMOTEGRAD_BACKEND", "tpu")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        select()


def test_numpy_memory_limit_in_bytes_or_as_a_fraction():
    b = select("numpy", memory_limit=1 << 20)
    assert b.name == "numpy" and b.xp is np and b.memory_limit == 1 << 20
    assert b.info() == {"backend": "numpy", "memory_limit": 1 << 20}
    assert "memory limit 1048576 bytes" in b.describe()
    total = backends.host_memory_bytes()
    if total:
        assert select("numpy", memory_limit=0.5).memory_limit == int(0.5 * total)
    with pytest.raises(ValueError, match="not in"):
        select("numpy", memory_limit=1.5)
    with pytest.raises(ValueError, match="negative"):
        select("numpy", memory_limit=-1)


def test_auto_is_numpy_without_a_gpu():
    if NGPU:
        pytest.skip("a CUDA GPU is visible: auto picks cupy (test_auto_picks_cupy)")
    assert select("auto") is numpy_backend
    assert select("auto", memory_limit=4096).memory_limit == 4096


def test_cupy_without_cupy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` fails as if not installed
    with pytest.raises(BackendUnavailable) as err:
        select("cupy")
    msg = str(err.value)
    assert "CuPy is not installed" in msg
    assert 'pip install "remotegrad[gpu]"' in msg and "remotegrad[gpu-cuda13]" in msg
    assert "--backend numpy" in msg
    assert select("auto") is numpy_backend  # auto quietly stays on numpy


def test_cupy_here_fails_with_what_is_missing():
    if NGPU:
        pytest.skip("a CUDA GPU is visible here")
    with pytest.raises(BackendUnavailable) as err:
        select("cupy")
    msg = str(err.value)
    if CUPY is None:
        assert 'pip install "remotegrad[gpu]"' in msg
    else:
        assert "sees no CUDA GPU" in msg and "nvidia-smi" in msg


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(MemoryError("Unable to allocate 1.00 PiB"))

    class CUDARuntimeError(RuntimeError):
        status = 2  # cudaErrorMemoryAllocation

    class CUBLASError(RuntimeError):
        pass

    assert is_out_of_memory(CUDARuntimeError("cudaErrorMemoryAllocation: out of memory"))
    assert is_out_of_memory(CUBLASError("CUBLAS_STATUS_ALLOC_FAILED"))
    assert not is_out_of_memory(CUBLASError("CUBLAS_STATUS_INVALID_VALUE"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_pinned_threshold_is_one_mib():
    assert PINNED_MIN_BYTES == 1 << 20


# --- GPU only ---------------------------------------------------------------------------
@pytest.fixture
def pool_limit():
    """Restores the memory pool's limit a test changed."""
    pool = CUPY.get_default_memory_pool()
    before = pool.get_limit()
    yield pool
    pool.free_all_blocks()
    pool.set_limit(size=before)


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _sample(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) * 100
    return (a > 0) if dtype == "bool" else a.astype(dtype)


@needs_gpu
def test_auto_picks_cupy():
    b = select("auto")
    assert b.name == "cupy" and b.xp is CUPY and b.device == 0
    assert b.memory_limit == CUPY.cuda.Device(0).mem_info[1]  # no limit: the card's memory
    info = b.info()
    assert info["backend"] == "cupy" and info["device"] == 0 and info["device_name"]


@needs_gpu
def test_bad_device_index_fails_at_start():
    with pytest.raises(BackendUnavailable, match=f"GPU index {NGPU} is out of range"):
        select("cupy", NGPU)
    with pytest.raises(BackendUnavailable, match="out of range"):
        select("cupy", -1)
    with pytest.raises(BackendUnavailable, match="out of range"):
        select("auto", NGPU)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_small_large_and_odd_arrays(dtype):
    b = select("cupy")
    itemsize = np.dtype(dtype).itemsize
    big = PINNED_MIN_BYTES // itemsize + 3  # just over the threshold: pinned path
    cases = {
        "0-d": _sample((), dtype),
        "empty": _sample((0, 3), dtype),
        "small": _sample((7, 5), dtype),
        "large": _sample((big,), dtype),
        "large 2-d": _sample((64, big // 32), dtype),
        "large transposed": _sample((64, big // 32), dtype).T,
        "large strided": _sample((2 * big,), dtype)[::2],
        "large read-only": np.frombuffer(_sample((big,), dtype).tobytes(), dtype=dtype),
    }
    for what, a in cases.items():
        d = b.to_device(a)
        assert isinstance(d, CUPY.ndarray), what
        assert d.shape == a.shape and d.dtype == a.dtype, what
        back = b.to_host(d)
        assert isinstance(back, np.ndarray), what
        assert back.shape == a.shape and back.dtype == a.dtype, what
        assert np.array_equal(back, a), what
    CUPY.cuda.get_current_stream().synchronize()
    stager = b.to_device.__self__
    stager.release_done()
    assert stager.pending() == 0


@needs_gpu
def test_pinned_staging_buffer_is_kept_until_its_copy_completed():
    """The copy is queued behind slow work; meanwhile the pinned pool must not hand its
    buffer to anyone else, and what arrives is the original data."""
    import cupyx
    b = select("cupy")
    stager = b.to_device.__self__
    stager.release_done()
    x = CUPY.zeros((8192, 8192), dtype=np.float32)
    for _ in range(10):  # keeps the stream busy for a while (cuBLAS, no kernel compile)
        x = x @ x
    a = np.arange(PINNED_MIN_BYTES, dtype=np.float32)  # 4 MiB
    d = b.to_device(a)
    assert stager.pending() >= 1, "the copy was not staged through pinned memory"
    staging = stager._inflight[-1][1]
    other = cupyx.empty_pinned(a.shape, a.dtype)  # the same size from the same pool
    assert other.ctypes.data != staging.ctypes.data
    other[...] = -1.0
    assert np.array_equal(CUPY.asnumpy(d), a)
    CUPY.cuda.get_current_stream().synchronize()
    stager.release_done()
    assert stager.pending() == 0
    del x


@needs_gpu
def test_memory_limit_bounds_the_pool(pool_limit):
    mib = 1 << 20
    b = select("cupy", memory_limit=256 * mib)
    assert b.memory_limit == 256 * mib and pool_limit.get_limit() == 256 * mib
    assert b.info()["memory_limit"] == 256 * mib
    with pytest.raises(Exception) as err:
        CUPY.empty(512 * mib, dtype=np.uint8)
    assert is_out_of_memory(err.value), repr(err.value)
    total = CUPY.cuda.Device(0).mem_info[1]
    half = select("cupy", memory_limit=0.5)
    assert half.memory_limit == int(0.5 * total) and pool_limit.get_limit() == int(0.5 * total)


@needs_gpu
def test_scope_makes_the_backend_gpu_current_in_any_thread():
    import threading
    device = NGPU - 1
    b = select("cupy", device)
    seen = []

    def run():
        with b.scope():
            seen.append(CUPY.cuda.Device().id)
            seen.append(b.to_device(np.ones(PINNED_MIN_BYTES, np.uint8)).device.id)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [device, device]
    CUPY.cuda.Device(0).use()


@pytest.mark.parametrize("shape,dtype", [((10,), "float32"), ((3 << 20,), "float32"),
                                         ((1001, 2999), "float64"), ((5_000_001,), "int8")])
def test_large_host_copies_are_split_across_threads_exactly(shape, dtype):
    """The pinned staging copy (worker/backend._copy_into): above the threshold in slices
    on several threads, below it (and for strided sources) in one np.copyto."""
    src = np.random.default_rng(0).integers(-100, 100, shape).astype(dtype)
    for s in (src, src[..., ::2]):
        dst = np.empty(s.shape, s.dtype)
        backends._copy_into(dst, s)
        np.testing.assert_array_equal(dst, s)
