"""OpDef.fresh (and a ufunc call) promises a result that shares no memory with an input:
the executor then writes a later ufunc's result into it (worker/engine/executor). Checked
on every such op's samples, so a forward that starts returning a view of its input fails
here rather than corrupting a value it overwrites."""

from __future__ import annotations

import numpy as np
import pytest

from remotegrad.proto import catalog

from .helpers import make_value

FRESH = sorted(n for n, op in catalog.CATALOG.items()
               if (op.fresh or op.ufunc) and op.forward is not None)
CASES = [(n, i) for n in FRESH for i in range(len(catalog.get(n).samples))]


def test_the_executor_reads_fresh_ops_from_the_catalog():
    from remotegrad.worker.engine import executor
    assert not hasattr(executor, "FRESH"), "executor keeps its own list of fresh ops"
    assert {"matmul", "conv2d", "softmax", "cast"} <= set(FRESH)


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_fresh_results_share_no_memory_with_inputs(name, index):
    op = catalog.get(name)
    sample = op.samples[index]
    rng = np.random.default_rng(index)
    arrays = [np.asarray(make_value(s, "float64", rng, noncontig=False)) for s in sample.inputs]
    with np.errstate(all="ignore"):
        out = op.forward(np, *arrays, **op.check_attrs(sample.attrs))
    for i, a in enumerate(arrays):
        assert not np.shares_memory(out, a), f"{name}: result shares input {i}'s memory"
