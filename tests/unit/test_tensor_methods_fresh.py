"""The committed client/_tensor_methods.py is what scripts/gen_tensor_methods.py makes from
the op table and the catalog, and Tensor's methods are its, not patched on afterwards."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_tensor_methods", ROOT / "scripts" / "gen_tensor_methods.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def test_generated_methods_are_fresh():
    committed = (ROOT / "client" / "_tensor_methods.py").read_text()
    assert committed == _generator().render(), (
        "client/_tensor_methods.py is stale: run `.venv/bin/python "
        "scripts/gen_tensor_methods.py` and commit")


def test_every_available_table_form_is_a_method():
    from remotegrad import Tensor, _functional, _ops
    from remotegrad.proto import catalog
    composed = _functional.composed()
    for name, spec in _ops.TABLE.items():
        if spec.op not in catalog.CATALOG:
            assert name in composed or not hasattr(Tensor, name), name
            continue
        if "m" in spec.forms:
            assert callable(getattr(Tensor, name)), name
        if "i" in spec.forms:
            assert callable(getattr(Tensor, f"{name}_")), name
    for name, fn in composed.items():  # the forms it declares (default: method, in place)
        forms = getattr(fn, "forms", "mi")
        assert hasattr(Tensor, name) == ("m" in forms), name
        assert hasattr(Tensor, f"{name}_") == ("i" in forms), name


def test_generated_method_records_the_tables_op():
    import remotegrad as rg
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x.add(x, alpha=2)
    assert y.grad_fn.name() == "AddBackward0" and y.tolist() == [3.0, 6.0]
    z = x.detach().clone()
    assert z.add_(1) is z and z.tolist() == [2.0, 3.0]
    assert z.squeeze_().shape == (2,)
