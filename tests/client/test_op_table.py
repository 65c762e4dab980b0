"""The client's op table (_op_table.ROWS) is the one place that enumerates catalog ops on
the client: every catalog op has a row (or is a derivative rule's op), and what the rest of
the client needs about an op (grad_fn names, saved tensors, method and function names) is
derived from the rows. An op added to the catalog and given a row needs no other edit."""

from __future__ import annotations

import re

import pytest

from remotegrad import _functional, _op_table, _ops
from remotegrad._function import NO_SAVED_TENSORS
from remotegrad.proto import catalog

PYTORCH_NODE = re.compile(r"[A-Z][A-Za-z0-9]*Backwards?\d*|NotImplemented|AccumulateGrad")


def test_every_catalog_op_has_a_row_or_is_a_rule_op():
    missing = sorted(op for op in catalog.CATALOG
                     if op not in _op_table.ROWS and not _op_table.internal(op))
    assert not missing, f"catalog ops without a client row: {missing}"


def test_rows_name_catalog_ops_or_client_composites():
    """A row whose op the catalog lacks is composed on the client (remotegrad.square...)."""
    unknown = set(_op_table.ROWS) - set(catalog.CATALOG) - set(_functional.COMPOSED)
    assert not unknown, sorted(unknown)


@pytest.mark.parametrize("op", sorted(catalog.CATALOG))
def test_every_op_has_a_pytorch_node_name(op):
    assert PYTORCH_NODE.fullmatch(_op_table.static_name(op)), _op_table.static_name(op)


def test_default_name_is_the_op_in_camel_case():
    assert _op_table.static_name("log_softmax") == "LogSoftmaxBackward0"
    assert _op_table.static_name("log1p") == "Log1PBackward0"  # the row's own


def test_saved_tensor_codes_are_known():
    for name, codes in _op_table.SAVES.items():
        assert PYTORCH_NODE.fullmatch(name), name
        assert set(codes) <= set("abcdABSr"), (name, codes)
    assert not set(_op_table.SAVES) & NO_SAVED_TENSORS


def test_table_is_derived_from_the_rows():
    """Every PyTorch name comes from one row, with that row's op."""
    for op, row in _op_table.ROWS.items():
        for name in row.names:
            assert _ops.TABLE[name].op == op
    assert len(_ops.TABLE) == sum(len(r.names) for r in _op_table.ROWS.values())


def test_a_name_given_by_two_rows_is_refused(monkeypatch):
    rows = dict(_op_table.ROWS, abs2=_op_table.Row(names={"abs": _op_table.MF}))
    monkeypatch.setattr(_op_table, "ROWS", rows)
    with pytest.raises(ValueError, match="'abs' in two rows"):
        _op_table._table()


def test_two_rows_saving_differently_under_one_name_are_refused(monkeypatch):
    rows = dict(_op_table.ROWS, mul2=_op_table.Row(grad="MulBackward0", saves="r"))
    monkeypatch.setattr(_op_table, "ROWS", rows)
    with pytest.raises(ValueError, match="MulBackward0 saves 'r'"):
        _op_table._saves()


def test_an_op_defined_once_runs_differentiates_and_is_named():
    """What an op needs is its define(): the forward from its ufunc, its rule, and on the
    client a derived grad_fn name (no row: it is reached with apply, as internal code does)."""
    import numpy as np

    import remotegrad as rg
    from remotegrad._tensor_base import apply
    from remotegrad.proto.catalog import define
    from remotegrad.proto.catalog.mathfn import infer_float_unary

    define("sinh_once", infer=infer_float_unary, ufunc="sinh", float_inputs=True,
           vjp=lambda g, x, out: g * x.cosh())
    try:
        x = rg.tensor([0.5, -1.0, 2.0], dtype=rg.float64, requires_grad=True)
        y = apply("sinh_once", x)
        assert type(y.grad_fn).__name__ == "SinhOnceBackward0"
        y.sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), np.sinh([0.5, -1.0, 2.0]))
        np.testing.assert_allclose(x.grad.numpy(), np.cosh([0.5, -1.0, 2.0]))
    finally:
        del catalog.CATALOG["sinh_once"]


def _torch_saved(fn) -> set[str]:
    import torch
    out = set()
    for a in dir(fn):
        v = getattr(fn, a) if a.startswith("_saved_") else None
        if isinstance(v, torch.Tensor) or (isinstance(v, (tuple, list))
                                           and any(isinstance(t, torch.Tensor) for t in v)):
            out.add(a)
    return out


def _node_cases():
    from test_ops import CASES
    return CASES


@pytest.mark.parametrize("case", _node_cases(), ids=lambda c: c[0])
def test_saved_tensors_are_pytorchs(case):
    """For each PyTorch function the table exposes (tests/client/test_ops.py's cases), the
    node PyTorch records saves tensors exactly when the row says so, the result among them
    exactly when the row's code has `r`; and the row says something about it."""
    import torch
    from test_ops import _inputs

    name, operands, kw = case
    if not _ops.available(name):
        pytest.skip(f"catalog has no op for {name}")
    fn = getattr(torch, name)(*_inputs(operands, torch, True), **kw).grad_fn
    if fn is None:
        return
    node = type(fn).__name__
    assert node in _op_table.SAVES or node in NO_SAVED_TENSORS, f"no saved-tensor fact: {node}"
    saved, code = _torch_saved(fn), _op_table.SAVES.get(node, "")
    assert bool(saved) == bool(code), (node, code, sorted(saved))
    assert ("_saved_result" in saved) == ("r" in code), (node, code, sorted(saved))


def _known_nodes() -> set[str]:
    known = set(_op_table.NODES) | set(_op_table.SAVES) | NO_SAVED_TENSORS
    known |= {_op_table.static_name(op) for op in catalog.CATALOG}
    for row in _op_table.ROWS.values():
        known |= set(row.saves) if isinstance(row.saves, dict) else set()
        known |= {row.namer} if isinstance(row.namer, str) else set()
    return known


def test_every_grad_fn_name_the_client_writes_is_in_the_table():
    """Composites name PyTorch's node themselves (nn.functional, Tensor.sort, ...); each
    such name is in the op table (a row's, or NODES with what it saves), so the table is
    the one list of the PyTorch nodes the client records."""
    from pathlib import Path

    import remotegrad

    written: dict[str, str] = {}
    for path in Path(remotegrad.__file__).parent.rglob("*.py"):
        if path.name != "_op_table.py":
            for name in re.findall(r'"([A-Z][A-Za-z0-9]*Backwards?\d+|CopyBackwards)"',
                                   path.read_text()):
                written.setdefault(name, path.name)
    unknown = {n: f for n, f in written.items() if n not in _known_nodes()}
    assert not unknown, f"grad_fn names written outside the op table: {unknown}"
