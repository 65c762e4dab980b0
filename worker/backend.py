"""Array backends: numpy (default) or cupy, chosen once per process.

`select()` picks one from a name (`numpy`, `cupy`, `auto`), a GPU index and a memory limit.
Asking for cupy where it cannot run fails here, at worker start, with a message that names
what is missing and how to fix it.

A backend also carries the worker's memory budget (`memory_limit`, bytes; 0: none): the
most one computation may need at its peak, checked against the shape estimate before any
leaf is fetched (worker/compute.py). On cupy the budget also bounds CuPy's device memory
pool, and with no limit configured it is the card's memory.

Transfers (cupy): each leaf goes to the device once per call. Arrays of PINNED_MIN_BYTES
or more are staged through pinned (page-locked) host memory and copied asynchronously on
the current stream; smaller ones go with `cupy.asarray`. Only targets come back
(`cupy.asnumpy`). The numpy backend's transfers are the identity.

This module imports numpy only (cupy when asked for), never gRPC, protobuf or redis-py:
the GPU checks import it on machines that have none of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

log = logging.getLogger("remotegrad.worker")

# Host arrays at least this large are staged through pinned memory and copied
# asynchronously; smaller ones are not worth a pinned buffer (cupy.asarray).
PINNED_MIN_BYTES = 1 << 20
# Free blocks CuPy's pinned pool may keep before they are given back to the system: the
# pool keeps every freed block for reuse at exactly its size, so leaves of ever new sizes
# would pin ever more host memory.
PINNED_POOL_MAX_FREE_BLOCKS = 32
# One thread copies host memory into a pinned buffer at ~7-10 GB/s (H200 host, measured:
# BENCHMARKS.md "GPU"), a fraction of what the PCIe copy from pinned memory then moves
# (~54 GB/s); numpy releases the GIL while copying, so large leaves are copied in slices
# on several threads.
PARALLEL_COPY_MIN_BYTES = 8 << 20
COPY_THREADS = 4

GPU_INSTALL = ('pip install "remotegrad[gpu]" (CuPy for CUDA 12 drivers) or '
               '"remotegrad[gpu-cuda13]" (CUDA 13 drivers)')
_OR_NUMPY = "or run the worker with --backend numpy (REMOTEGRAD_BACKEND=numpy) or auto"


class BackendUnavailable(RuntimeError):  # noqa: N818  (reads as what happened)
    """The backend asked for cannot run here; the message says what is missing and how
    to fix it."""


@dataclass(frozen=True)
class Backend:
    name: str
    xp: Any
    to_device: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]
    memory_limit: int = 0  # bytes one computation may need at its peak; 0: no limit
    device: int | None = None  # GPU index (cupy)
    device_name: str = ""
    # Entered around every computation: makes the backend's GPU current in the calling
    # thread (CUDA's current device is per thread; gRPC runs calls on its own threads).
    scope: Callable[[], contextlib.AbstractContextManager] = field(
        default=contextlib.nullcontext, repr=False)

    def info(self) -> dict:
        """What a worker advertises in its registry heartbeat."""
        out: dict[str, Any] = {"backend": self.name, "memory_limit": self.memory_limit}
        if self.device is not None:
            out.update(device=self.device, device_name=self.device_name)
        return out

    @property
    def where(self) -> str:
        """'numpy', 'cupy on GPU 0 (NVIDIA H100 80GB HBM3)'."""
        if self.device is None:
            return self.name
        return f"{self.name} on GPU {self.device} ({self.device_name})"

    def describe(self) -> str:
        limit = (f"memory limit {self.memory_limit} bytes" if self.memory_limit
                 else "no memory limit")
        return f"{self.where}, {limit}"


numpy_backend = Backend("numpy", np, lambda a: a, lambda a: a)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says an allocation failed: MemoryError (numpy; CuPy's
    OutOfMemoryError derives from it) or a CUDA library that could not allocate."""
    if isinstance(exc, MemoryError):
        return True
    kind = type(exc).__name__
    if kind == "OutOfMemoryError":
        return True
    if kind == "CUDARuntimeError" and getattr(exc, "status", None) == 2:
        return True  # cudaErrorMemoryAllocation
    if kind in ("CUDADriverError", "CUBLASError", "CUSOLVERError", "CUFFTError",
                "CUSPARSEError", "CURANDError", "CuDNNError", "CUTENSORError"):
        text = str(exc).upper()
        return "OUT_OF_MEMORY" in text or "ALLOC_FAILED" in text or "OUT OF MEMORY" in text
    return False


# Where a container's memory limit is read: cgroup v2, then v1 (the container's own
# namespace mounts its cgroup at /sys/fs/cgroup).
CGROUP_MEMORY_LIMITS = ("/sys/fs/cgroup/memory.max",
                        "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def cgroup_memory_limit(paths=CGROUP_MEMORY_LIMITS) -> int:
    """The memory limit of this process's cgroup in bytes, from the first of `paths` that
    can be read; 0 when there is none (`max`, cgroup v1's near-2**63 "unlimited", no file)."""
    for path in paths:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < 1 << 62:
            return int(text)
        return 0  # "max", or v1's unlimited: the first readable file decides
    return 0


def host_memory_bytes(cgroup_paths=CGROUP_MEMORY_LIMITS) -> int:
    """The memory this process may use: the machine's physical memory, or its container's
    cgroup limit when that is lower (a fraction of the host's memory would have a worker in
    a 4 GiB pod budget for the node's 512 GiB and be OOM-killed). 0 if neither reads."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 0
    limit = cgroup_memory_limit(cgroup_paths)
    return min(physical, limit) if physical and limit else physical or limit


def resolve_memory_limit(limit: int | float, total: int, of_what: str) -> int:
    """A limit in bytes: an int is bytes, a float in (0, 1] a fraction of `total`."""
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise ValueError(f"memory limit must be bytes or a fraction, got {limit!r}")
    if isinstance(limit, float):
        if not 0.0 < limit <= 1.0:
            raise ValueError(f"memory limit fraction {limit} is not in (0, 1]")
        if total <= 0:
            raise BackendUnavailable(f"memory limit {limit} is a fraction of {of_what}, "
                                     "which cannot be read here; give it in bytes")
        return int(limit * total)
    if limit < 0:
        raise ValueError(f"memory limit {limit} is negative")
    return limit


def select(name: str | None = None, device: int | None = 0, *,
           memory_limit: int | float = 0) -> Backend:
    """`numpy`, `cupy`, or `auto` (cupy only when it imports and sees a GPU).

    `name` None reads $REMOTEGRAD_BACKEND (default numpy), `device` None reads
    $REMOTEGRAD_DEVICE (default 0). `memory_limit`: bytes (int), or a fraction (float in
    (0, 1]) of the GPU's memory (cupy) or of the machine's physical memory (numpy); 0 is
    no limit (cupy: the card's memory). Raises BackendUnavailable when cupy is asked for
    and cannot run, or the device index is out of range."""
    name = (name or os.environ.get("REMOTEGRAD_BACKEND") or "numpy").strip().lower()
    if device is None:
        device = int(os.environ.get("REMOTEGRAD_DEVICE") or 0)
    if name == "numpy":
        return _numpy_backend(memory_limit)
    if name == "cupy":
        return _cupy_backend(_import_cupy(), device, memory_limit)
    if name == "auto":
        try:
            cupy = _import_cupy()
        except BackendUnavailable as e:
            log.info("backend auto: numpy, since %s", e)
            return _numpy_backend(memory_limit)
        count, why = _device_count(cupy)
        if count == 0:
            log.info("backend auto: numpy (CuPy sees no CUDA GPU: %s)", why)
            return _numpy_backend(memory_limit)
        return _cupy_backend(cupy, device, memory_limit)
    raise ValueError(f"unknown backend {name!r}: expected numpy, cupy or auto")


def _numpy_backend(memory_limit: int | float) -> Backend:
    limit = resolve_memory_limit(memory_limit, host_memory_bytes(),
                                 "this machine's (or its container's) memory")
    return replace(numpy_backend, memory_limit=limit) if limit else numpy_backend


def _import_cupy():
    try:
        import cupy
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("cupy", "cupyx", "cupy_backends"):
            raise BackendUnavailable(
                f"backend cupy: CuPy failed to import: {e}. Reinstall it with "
                f"{GPU_INSTALL}, {_OR_NUMPY}") from None
        raise BackendUnavailable(
            f"backend cupy: CuPy is not installed. Install it with {GPU_INSTALL}, "
            f"{_OR_NUMPY}") from None
    except Exception as e:  # noqa: BLE001  (a CUDA library missing or of the wrong version)
        raise BackendUnavailable(
            f"backend cupy: CuPy is installed but failed to import ({type(e).__name__}: "
            f"{e}). Its wheel must match the CUDA version of the driver: {GPU_INSTALL}, "
            f"{_OR_NUMPY}") from None
    return cupy


def _device_count(cupy) -> tuple[int, str]:
    """(GPUs CuPy sees, why none when 0)."""
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # noqa: BLE001  (no driver, no device, driver too old)
        return 0, f"{type(e).__name__}: {e}"
    return count, "" if count else "the CUDA runtime reports 0 devices"


def _visible() -> str:
    v = os.environ.get("CUDA_VISIBLE_DEVICES")
    return "" if v is None else f"; CUDA_VISIBLE_DEVICES={v!r}"


def _cupy_backend(cupy, device: int, memory_limit: int | float) -> Backend:
    count, why = _device_count(cupy)
    if count == 0:
        raise BackendUnavailable(
            f"backend cupy: CuPy {cupy.__version__} is installed but sees no CUDA GPU "
            f"({why}{_visible()}). Check that nvidia-smi lists a GPU, that "
            "CUDA_VISIBLE_DEVICES does not hide it, and that the CuPy wheel matches the "
            "driver (cupy-cuda12x for a CUDA 12 driver, cupy-cuda13x for CUDA 13: "
            f"{GPU_INSTALL}); {_OR_NUMPY}")
    if not 0 <= device < count:
        raise BackendUnavailable(
            f"backend cupy: GPU index {device} is out of range: CuPy sees {count} CUDA "
            f"GPU(s), indices 0 to {count - 1}{_visible()}. Set --device "
            "(REMOTEGRAD_DEVICE) to one of them")
    dev = cupy.cuda.Device(device)
    try:
        dev.use()  # this thread (select's caller); computations enter `scope` themselves
        total = int(dev.mem_info[1])
        props = cupy.cuda.runtime.getDeviceProperties(device)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as e:  # noqa: BLE001  (context creation fails on a broken driver)
        raise BackendUnavailable(
            f"backend cupy: GPU {device} cannot be used ({type(e).__name__}: {e}). Check "
            f"the driver with nvidia-smi and that the CuPy wheel matches it ({GPU_INSTALL})"
            ) from None
    limit = resolve_memory_limit(memory_limit, total, f"GPU {device}'s memory")
    if limit:
        if limit > total:
            log.warning("memory limit %d bytes is more than GPU %d has (%d bytes)",
                        limit, device, total)
        with dev:
            cupy.get_default_memory_pool().set_limit(size=limit)
    stager = _PinnedStager(cupy)
    return Backend("cupy", cupy, stager.to_device, cupy.asnumpy, limit or total, device,
                   name, lambda: cupy.cuda.Device(device))


_copy_pool: ThreadPoolExecutor | None = None
_copy_pool_lock = threading.Lock()


def _copy_into(dst: np.ndarray, src: np.ndarray) -> None:
    """np.copyto(dst, src) into a C-contiguous `dst`; large contiguous sources in
    COPY_THREADS slices at once (see PARALLEL_COPY_MIN_BYTES)."""
    if src.nbytes < PARALLEL_COPY_MIN_BYTES or not src.flags.c_contiguous:
        np.copyto(dst, src, casting="no")  # any strides in, contiguous out
        return
    global _copy_pool
    with _copy_pool_lock:
        if _copy_pool is None:
            _copy_pool = ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="pinned-copy")
    d, s = dst.reshape(-1), src.reshape(-1)
    cuts = [s.size * k // COPY_THREADS for k in range(COPY_THREADS + 1)]
    list(_copy_pool.map(lambda k: np.copyto(d[cuts[k]:cuts[k + 1]], s[cuts[k]:cuts[k + 1]],
                                            casting="no"), range(COPY_THREADS)))


class _PinnedStager:
    """Host → device copies; large ones through pinned memory, asynchronously.

    CuPy's pinned memory pool hands a freed block to the next request of its size at
    once, whatever copy may still be reading it: it does not follow streams. So each
    staging buffer is held here, with an event recorded after its copy, until that event
    has completed; only then may the pool reuse it."""

    def __init__(self, cupy) -> None:
        import cupyx
        self.cupy, self.empty_pinned = cupy, cupyx.empty_pinned
        self.pool = cupy.get_default_pinned_memory_pool()
        self._inflight: list[tuple[Any, np.ndarray]] = []  # (event, staging buffer)
        self._lock = threading.Lock()
        self._pinned_ok = True

    def to_device(self, a: np.ndarray):
        a = np.asarray(a)
        if a.nbytes < PINNED_MIN_BYTES or not self._pinned_ok:
            return self.cupy.asarray(a)
        self.release_done()
        try:
            staging = self.empty_pinned(a.shape, a.dtype)  # C order, from the pinned pool
        except Exception as e:  # noqa: BLE001  (pinned memory exhausted or not allowed)
            if not is_out_of_memory(e):
                log.warning("pinned host memory unavailable (%s); copying leaves "
                            "without it", e)
                self._pinned_ok = False
            return self.cupy.asarray(a)
        _copy_into(staging, a)
        out = self.cupy.empty(a.shape, a.dtype)
        stream = self.cupy.cuda.get_current_stream()
        out.set(staging, stream=stream)  # asynchronous: the source is pinned
        done = stream.record()
        with self._lock:
            self._inflight.append((done, staging))
        return out

    def release_done(self) -> None:
        """Give staging buffers whose copy has completed back to the pool."""
        with self._lock:
            self._inflight = [(e, b) for e, b in self._inflight if not e.done]
        if self.pool.n_free_blocks() > PINNED_POOL_MAX_FREE_BLOCKS:  # free ones only
            self.pool.free_all_blocks()

    def pending(self) -> int:
        with self._lock:
            return len(self._inflight)
