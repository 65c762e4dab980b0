"""The op catalog: one declarative OpDef per op (see _registry.OpDef), declared with
`define(name, *, infer=..., ufunc=... | forward=..., vjp=..., ...)`: keyword-only, the
forward derived from the array module's ufunc where there is one.

Adding an op (issue 18 item 1): its `define` in the topic module, with samples (the tests
walk every op's samples against PyTorch, finite differences and second order); its client
row in client/_op_table.py (PyTorch names, grad_fn name when not CamelCase + Backward0,
saved tensors). Nothing else enumerates ops: the engine reads the record (`ufunc`,
`fresh`, `fusable`), the tests read the catalog and the rows (tests/client/test_op_table).

Where an op's facts lived before, and where they go:
- six topic helpers (unary_op, binary, compare, reduction, _shape_op, _piece_op) with
  different positional orders, and bare register(OpDef(...)) calls: one `define` each,
  topic defaults bound by keyword (functools.partial), converted one module at a time;
- OpDef.torch_name (a client fact in the shared record): client/_op_table.ROWS;
- client/_function.SAVES / NO_SAVED_TENSORS (by grad_fn name): derived from the rows
  (and _op_table.NODES for the composites' own PyTorch nodes);
- client/_ops.TABLE (by PyTorch name) and its INTERNAL set: derived from the rows;
- worker/engine/executor.FRESH: OpDef.fresh;
- tests/client/test_ops.py's list of ops exposed outside the table: the rows;
- tests/engine/torch_refs.py: only ops whose PyTorch call differs from
  F.<name>/torch.<name>(*inputs, **attrs) (a test's knowledge of torch, kept there);
- literal grad_fn names in client composites (nn.functional, _shape, _select, ...): they
  name PyTorch nodes of composites, not catalog ops; listed in _op_table.NODES with
  their saved tensors.

Modules by topic: elementwise (arithmetic, comparison, logic), mathfn (math functions and
activations), reductions, linalg, shape, indexing, nn (linear, normalisation, losses),
conv (conv2d and pooling), structural (sources, casts, where, and the `grad` node).

Names and attributes are PyTorch's (`sum(dim, keepdim)`, `transpose(dim0, dim1)`,
`cross_entropy(ignore_index, reduction, label_smoothing)`), tensors are inputs in
PyTorch's argument order, optional tensors (bias, weight) trailing inputs.

Conventions that are not obvious from PyTorch:

- Every op has exactly one output. PyTorch functions that return several tensors are
  several ops: `max(x, dim)` is `max` (values) and `argmax` (indices); `split` and `chunk`
  take an `index` attribute and give that one piece.
- `index` encodes `x[key]` in a string attribute (ints, slices, None, `...`, `T` for each
  tensor input); a bool mask carries its true-element count in `mask_counts` so that
  shapes are known before any data is (see indexing.py).
- `dropout` takes its mask as an input, drawn by the client.
- Composite ops (`forward=None`, `decompose=...`) are defined by a decomposition into
  catalog ops; the engine expands them, so they need no derivative rule of their own.
- `expand` keeps the attribute name `shape` (the SDK's); `broadcast_to(size)` is PyTorch's.
- A `leaf` is named by its content hash; equal tensors that must stay distinct (two
  parameters with equal values) carry different `tag`s.
- Ops that exist for derivatives and have no PyTorch function of their own (their
  names say what they are): tanh_backward, sigmoid_backward, threshold_backward,
  leaky_relu_backward (aten's),
  index_backward, pad_backward, conv2d_input_grad, conv2d_weight_grad,
  max_pool2d_backward, max_pool2d_select, sum_to; and the checks of values the composites
  need (check_targets, check_unit_interval: see _checks.py).
- Not differentiable at all (listed in NON_DIFFERENTIABLE): comparisons, logic, isnan and
  friends, argmax/argmin, all/any, and the sources. For ops with an integer input (indices,
  targets) that input's rule is None.
"""

from . import (  # noqa: F401  (registration)
    conv,
    elementwise,
    indexing,
    linalg,
    mathfn,
    nn,
    reductions,
    shape,
    structural,
)
from ._checks import CheckedRuntimeError
from ._identity import attrs_key
from ._registry import CATALOG, REQUIRED, In, OpDef, Sample, define, get, register
from ._types import (
    DEFAULT_FLOAT,
    DTYPES,
    FLOATING,
    INTEGRAL,
    ITEMSIZE,
    Meta,
    OpError,
    broadcast_shapes,
    normalize_dims,
    numel,
    promote_types,
    result_type,
    scalar_meta,
)

SOURCES = frozenset({"leaf", "const", "full", "grad"})
NON_DIFFERENTIABLE = frozenset({
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "logical_not", "isnan", "isinf", "isfinite", "argmax", "argmin", "all", "any",
    "detach", "leaf", "const", "full", "grad", "arange",
})

__all__ = [
    "CATALOG",
    "CheckedRuntimeError",
    "DEFAULT_FLOAT",
    "DTYPES",
    "FLOATING",
    "INTEGRAL",
    "ITEMSIZE",
    "NON_DIFFERENTIABLE",
    "REQUIRED",
    "SOURCES",
    "In",
    "Meta",
    "OpDef",
    "OpError",
    "Sample",
    "attrs_key",
    "define",
    "broadcast_shapes",
    "get",
    "normalize_dims",
    "numel",
    "promote_types",
    "register",
    "result_type",
    "scalar_meta",
]
