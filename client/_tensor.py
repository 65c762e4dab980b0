"""remotegrad.Tensor: a lazy handle on a graph node, with PyTorch's API.

The class is TensorBase (the state: node, autograd attributes, values, casts) with the
methods of the modules built on it, each a mixin defined next to what it uses: in-place
updates in _inplace, the table-driven methods in the generated _tensor_methods, operators
in _operators, shape and indexing in _shape, selections in _select, comparisons in
_compare, new_* and random fills in _creation, and backward here (autograd sits above the
method modules).

The client's modules import each other in one direction: each only from the rows above
its own, or from those before it in its row:

    leaves        _dtypes _size _warn _errors _grad_mode _format _node _request _session
    TensorBase    _function (grad_fns), _tensor_meta (static facts), _tensor_base (apply)
    recording     _inplace _creation _ops _select _compare, _shape, _operators _derivative,
                  _autograd _functional, _tensor_methods (generated)
    the class     _tensor
    above it      _custom _serialization nn optim autograd utils ..., __init__

(_remote and _engine, which bring grpc and the worker's engine, are imported where
a value is first needed, so that `import remotegrad` stays cheap; tests/unit/
test_client_imports.py keeps the graph acyclic.)
"""

from __future__ import annotations

import builtins

from . import _tensor_base
from ._autograd import backward as _backward
from ._compare import CompareMethods
from ._creation import CreationMethods
from ._inplace import InPlaceMethods
from ._operators import OperatorMethods
from ._select import SelectMethods
from ._shape import ShapeMethods
from ._tensor_base import (  # noqa: F401  (the names nn, optim and others import from here)
    Scalar,
    TensorBase,
    _edge,
    _rebuild,
    apply,
    batch,
)
from ._tensor_methods import TensorMethods


class Tensor(OperatorMethods, ShapeMethods, SelectMethods, CompareMethods, CreationMethods,
             TensorMethods, InPlaceMethods, TensorBase):
    __slots__ = ()

    def backward(self, gradient: Tensor | None = None, retain_graph: builtins.bool | None = None,
                 create_graph: builtins.bool = False, inputs=None) -> None:
        _backward([self], None if gradient is None else [gradient], retain_graph,
                  create_graph, inputs=inputs)


_tensor_base.set_tensor_class(Tensor)
