"""What only a GPU can show: a compiled program queues its kernels without waiting for
the device. Skipped, with the reason, where CuPy or a GPU is missing."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.worker.engine import compile_graph

from .backends import cupy_missing
from .graphs import chain_graph, mlp_graph

pytestmark = pytest.mark.skipif(cupy_missing() is not None, reason=str(cupy_missing()))

SPIN = r"""
extern "C" __global__ void spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


@pytest.mark.parametrize("graph", ["mlp", "chain"])
def test_a_run_never_waits_for_the_device(graph):
    """A kernel that spins for ~0.3 s is queued first; if the program's run synchronised
    anywhere (a value read back, a blocking copy), it could not return before the spin
    ends. It must return with the spin still running, and compute the right values."""
    import cupy

    if graph == "mlp":
        eg, targets = mlp_graph()
    else:
        eg, x, v, grad = chain_graph(size=1 << 16)
        targets = [v, grad]
    eg.prog = compile_graph(eg.g, targets, cupy)
    eg.run()
    want = eg.run()                                          # checked run, then the fast one
    leaves = [eg.device[h] for h in eg.prog.leaf_hashes]     # already on the device
    clock_khz = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["clockRate"]
    spin = cupy.RawKernel(SPIN, "spin")
    spin((1,), (1,), (np.int64(clock_khz * 300),))           # ~0.3 s at the base clock
    spun = cupy.cuda.Event()
    spun.record()
    outs = eg.prog.run(leaves)
    assert not spun.done, "the run waited for the device (a host synchronisation)"
    cupy.cuda.get_current_stream().synchronize()
    for got, ref in zip(outs, want):
        np.testing.assert_allclose(cupy.asnumpy(got), ref, rtol=1e-6, atol=1e-7)
