"""One exception family, the same in both modes: a mistake only the values reveal (an
index out of range, an integer division by zero) raises the same class with the same
message whether the graph ran in this process (`connect("local")`) or in a cluster, and
that class derives from the builtin PyTorch raises, with PyTorch's message. Nothing is
logged on the user's stderr for it.

Each program runs in a fresh interpreter, through the product's entry points only: once
embedded, once against a real cluster (redis, gateway, two workers; tests/procs.py), and
once under PyTorch.
"""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import numpy as np
import pytest

import remotegrad as rg
from remotegrad.proto import codec
from remotegrad.proto.errors import KIND_KEY, ComputeError, compute_error

# name → a program that leaves its result in `out` (printing it computes it).
PROGRAMS = {
    "index_select": "out = torch.tensor([1., 2.]).index_select(0, torch.tensor([5]))",
    "index_select_negative": "out = torch.tensor([1., 2.]).index_select(0, torch.tensor([-1]))",
    "tensor_index": "out = torch.tensor([1., 2.])[torch.tensor([3])]",
    "embedding": "out = torch.nn.functional.embedding(torch.tensor([4]), torch.ones(3, 2))",
    "cross_entropy_target": "out = torch.nn.functional.cross_entropy(torch.ones(2, 3), "
                            "torch.tensor([0, 5]))",
    "gather": "out = torch.tensor([1., 2.]).gather(0, torch.tensor([7]))",
    "scatter_add": "out = torch.zeros(2).scatter_add(0, torch.tensor([3]), torch.ones(1))",
    "index_add": "out = torch.zeros(2).index_add(0, torch.tensor([3]), torch.ones(1))",
    "floor_divide_by_zero": "out = torch.tensor([1, 2]) // torch.tensor([0, 1])",
    "remainder_by_zero": "out = torch.tensor([7, 2]) % torch.tensor([1, 0])",
    "trunc_divide_by_zero": "out = torch.div(torch.tensor([1, 2]), torch.tensor([0, 1]), "
                            "rounding_mode='trunc')",
    # Read through a gradient: the forward's error is the one raised (PyTorch's at once).
    "in_a_backward": "x = torch.tensor([1., 2.], requires_grad=True)\n"
                     "x.index_select(0, torch.tensor([2])).sum().backward()\n"
                     "out = x.grad",
    # After a failed call the session computes as before.
    "then_fine": "out = torch.tensor([1., 2.]).index_select(0, torch.tensor([1]))",
}

# Where remotegrad raises another class than PyTorch, in both modes alike.
DIFFERS = {
    "index_add": "PyTorch 2.13 raises IndexError('index out of range in self') for "
                 "index_add; the catalog's check raises RuntimeError with the index",
    "in_a_backward": "the gradient's graph needs no value of the forward index_select, so "
                     "only the backward's index_add runs and fails (see index_add); PyTorch "
                     "fails at the forward",
}

RUNNER = r"""
import json, sys
name, programs = sys.argv[1], json.loads(sys.stdin.read())
if name == "torch":
    import torch
else:
    import remotegrad as torch
    torch.connect(name)
for key, program in programs.items():
    scope = {"torch": torch}
    try:
        exec(program, scope)
        result = {"value": repr(scope["out"])}
    except Exception as e:
        t = type(e)
        result = {"class": t.__module__ + "." + t.__qualname__, "message": str(e),
                  "builtin": [b.__name__ for b in (IndexError, ValueError, RuntimeError)
                              if isinstance(e, b)],
                  "family": name != "torch" and isinstance(e, torch.RemotegradError)}
    print(json.dumps({key: result}), flush=True)
"""


def _run(mode: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", RUNNER, mode], input=json.dumps(PROGRAMS),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    results = {}
    for line in proc.stdout.splitlines():
        results.update(json.loads(line))
    return results, proc.stderr


@pytest.fixture(scope="module")
def runs(cluster):
    return {"torch": _run("torch"), "local": _run("local"), "cluster": _run(cluster.address)}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_same_class_and_message_embedded_and_in_a_cluster(runs, name):
    local, remote = runs["local"][0][name], runs["cluster"][0][name]
    assert local == remote
    if "value" not in local:
        assert local["family"] and local["class"].startswith("remotegrad.")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    reason=DIFFERS[n])) if n in DIFFERS else n for n in sorted(PROGRAMS)])
def test_class_and_message_are_pytorchs(runs, name):
    theirs, ours = runs["torch"][0][name], runs["local"][0][name]
    if "value" in theirs:
        assert ours == theirs
        return
    assert "class" in ours, f"PyTorch raised {theirs}, remotegrad gave {ours}"
    assert theirs["class"] == "builtins." + theirs["builtin"][0]  # PyTorch's is a builtin
    assert (ours["builtin"], ours["message"]) == (theirs["builtin"], theirs["message"])


def test_nothing_on_the_users_stderr(runs):
    """The embedded engine's log is the user's stderr: a user's mistake logs nothing
    there (the worker process logs it at info, for its operator)."""
    assert runs["local"][1] == ""
    assert runs["cluster"][1] == ""


def test_the_cluster_carries_the_kind_in_the_status(cluster):
    """The wire contract: INVALID_ARGUMENT with PyTorch's message as the details, and the
    builtin class named in the trailing metadata."""
    a, idx = np.array([1.0, 2.0], np.float32), np.array([5])
    nodes = [codec.WireNode(0, "leaf", (), {"hash": codec.array_hash(a), "dtype": "float32",
                                            "shape": (2,)}),
             codec.WireNode(1, "leaf", (), {"hash": codec.array_hash(idx), "dtype": "int64",
                                            "shape": (1,)}),
             codec.WireNode(2, "index_select", (0, 1), {"dim": 0})]
    req = codec.encode_request(nodes, [codec.encode_array(a), codec.encode_array(idx)], [2])
    with pytest.raises(grpc.RpcError) as err:
        cluster.stub().Compute(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "index out of range in self"
    assert (KIND_KEY, "IndexError") in tuple(err.value.trailing_metadata())


def _bad_request():
    """A graph no client of ours would build: an op the catalog does not have."""
    return codec.encode_request([codec.WireNode(0, "no_such_op", (), {})], [], [0])


def test_a_refused_graph_is_graph_refused_in_both_modes(cluster):
    from remotegrad._remote import RemoteSession
    from remotegrad._session import LocalSession
    remote = RemoteSession(cluster.address)
    try:
        for session in (LocalSession(), remote):
            with pytest.raises(rg.GraphRefusedError, match="unknown op 'no_such_op'") as e:
                session.compute(_bad_request())
            assert isinstance(e.value, rg.RemotegradError)
            assert isinstance(e.value, RuntimeError) and not isinstance(e.value, IndexError)
    finally:
        remote.close()


@pytest.mark.parametrize("raised,kind,message", [
    (IndexError("index out of range in self"), "IndexError", "index out of range in self"),
    (ZeroDivisionError("ZeroDivisionError"), "RuntimeError", "ZeroDivisionError"),
    (ZeroDivisionError("integer division or modulo by zero"), "RuntimeError",
     "ZeroDivisionError: integer division or modulo by zero"),
    (ValueError("bad value"), "ValueError", "bad value"),
    (TypeError("no loop for bool"), "RuntimeError", "TypeError: no loop for bool"),
    (np.exceptions.AxisError(3, 1), "IndexError", str(np.exceptions.AxisError(3, 1))),
])
def test_what_a_forward_raises_becomes_the_kind_pytorch_raises(raised, kind, message):
    err = compute_error(raised)
    assert isinstance(err, ComputeError) and (err.kind, str(err)) == (kind, message)
    from remotegrad._errors import from_engine_error
    mine = from_engine_error(err)
    assert isinstance(mine, rg.RemotegradError) and str(mine) == message
    assert isinstance(mine, {"IndexError": IndexError, "ValueError": ValueError,
                             "RuntimeError": RuntimeError}[kind])
