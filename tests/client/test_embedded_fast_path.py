"""The embedded mode runs a structure planned before straight on its leaves' arrays
(worker.engine.run_planned); what its values make fail still raises PyTorch's error, from
the user's line, as the first (planning) call does."""

from __future__ import annotations

import pytest
import torch

import remotegrad as rg
from remotegrad.worker import engine


def _gather(lib, i):
    x = lib.tensor([1.0, 2.0])
    return (x[lib.tensor([i])] * 2).tolist()


def _floor_div(lib, d):
    return (lib.tensor([4, 6]) // lib.tensor([2, d])).tolist()


@pytest.mark.parametrize("fn, good, bad", [(_gather, 1, 5), (_floor_div, 1, 0)])
def test_a_planned_structure_fails_as_pytorch(fn, good, bad, monkeypatch):
    assert fn(rg, good) == fn(torch, good)  # plans the structure
    ran = []
    real = engine.run_planned
    monkeypatch.setattr(engine, "run_planned",
                        lambda *a: ran.append(1) or real(*a))
    from remotegrad import _session
    monkeypatch.setattr(_session.current(), "_run_planned", engine.run_planned)
    assert fn(rg, good) == fn(torch, good)
    assert ran  # the planned path ran
    with pytest.raises(Exception) as theirs:
        fn(torch, bad)
    with pytest.raises(Exception) as mine:
        fn(rg, bad)
    assert isinstance(mine.value, type(theirs.value))
    assert str(mine.value) == str(theirs.value)


def test_values_read_are_read_only():
    for _ in range(2):  # planned, then through the planned path
        v = (rg.tensor([1.0, 2.0]) * 3).numpy()
        assert v.tolist() == [3.0, 6.0]
        assert not v.flags.writeable


def test_an_unplanned_structure_is_none():
    assert engine.run_planned((("no such",), (0,)), [], None) is None
