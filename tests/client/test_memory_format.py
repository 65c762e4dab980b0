"""torch.memory_format's values as PyTorch names them, accepted where PyTorch takes them
(zeros_like, clone, .to, empty_like), pickled by name; layouts are not modelled (docs)."""

from __future__ import annotations

import pickle

import pytest
import torch

import remotegrad as rg

NAMES = ["contiguous_format", "preserve_format", "channels_last", "channels_last_3d"]


@pytest.mark.parametrize("name", NAMES)
def test_values_match_pytorchs(name):
    mine, ref = getattr(rg, name), getattr(torch, name)
    assert (repr(mine), str(mine)) == (repr(ref), str(ref))
    assert isinstance(mine, rg.memory_format)
    assert pickle.loads(pickle.dumps(mine)) is mine


def test_memory_format_cannot_be_made():
    found = []
    for lib in (rg, torch):
        with pytest.raises(TypeError) as e:
            lib.memory_format()
        found.append(str(e.value))
    assert found[0] == found[1]


def test_accepted_where_pytorch_takes_them():
    """An optimiser written as PyTorch's own: state made with preserve_format."""
    found = []
    for lib in (rg, torch):
        p = lib.ones(2, 3)
        state = lib.zeros_like(p, memory_format=lib.preserve_format)
        moved = p.to(memory_format=lib.contiguous_format).clone(memory_format=lib.preserve_format)
        found.append((state.tolist(), moved.tolist(),
                      lib.empty_like(p, memory_format=lib.contiguous_format).shape))
    assert found[0] == found[1]
