"""The op catalog: one declarative OpDef per op (see _registry.OpDef), each declared once
with `define(name, *, infer=..., ufunc=... | forward=..., vjp=..., attrs=..., samples=...)`:
keyword-only, the forward derived from the array module's ufunc where there is one. A topic
module binds its defaults by keyword (`_unary = partial(define, infer=..., float_inputs=True)`
in mathfn, `_binary`, `_compare`, `_reduction`), never by position.

Adding an op (issue 18 item 1) is its `define` in the topic module, with samples: the tests
walk every op's samples against PyTorch, finite differences and second order
(tests/engine/test_ops.py), and check `fresh` (tests/engine/test_fresh.py). Reaching it from
PyTorch code is its row in client/_op_table.py (PyTorch names, the grad_fn name when it is
not CamelCase + Backward0, saved tensors, view or not); tests/client/test_op_table.py fails
until the row exists. Nothing else enumerates ops: the engine reads the record (`ufunc`,
`fresh`, `fusable`, `float_inputs`, `promote`), the client its rows, the tests both.

Its `batch=` says how it maps over a leading batch dimension (_batching.py: a rule of the
attributes, the slice's metas and which inputs are batched, giving new attributes or a
small rewrite in catalog ops; the topic partials give the elementwise and reduction
defaults; NoRule(why) where there is none, and vmap maps that op per slice). vmap reads it
(client/func/_batching.py), and so can a gateway batching same-structure graphs;
tests/client/test_vmap_rules.py checks every op's rule on its samples against mapping per
slice, tests/engine/test_catalog_records.py that every op declares one.

What the record holds is what a worker needs; PyTorch-facing facts (grad_fn names, saved
tensors, method names) are the client's rows, and CUDA kernels the worker's
(worker/engine/kernels.py registers them into _special.DEVICE, where the forwards of
softmax, log_softmax and the cross-entropy rows look them up).

Where an op's facts lived before the single declaration, and where they went:
- six topic helpers with different positional orders (unary_op, binary, compare,
  reduction, _shape_op, _piece_op) and bare register(OpDef(...)) calls: `define`;
- OpDef.torch_name: client/_op_table.ROWS (grad, namer);
- client/_function.SAVES / NO_SAVED_TENSORS: derived from the rows (and _op_table.NODES for
  the PyTorch nodes that client composites name themselves: TBackward0, RsubBackward0...);
- client/_ops.TABLE and INTERNAL, _tensor_base.VIEWS: derived from the rows;
- worker/engine/executor.FRESH: OpDef.fresh;
- tests/client/test_ops.py's list of ops exposed outside the table: the rows.
Kept where they are, as not facts of the declaration: tests/engine/torch_refs.py (how to
call PyTorch for the ops whose call differs from F.<name>/torch.<name>), the engine's cost
and blocking tables (worker/engine/cost.py, blocks.py), the differential tester's op mix.

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
    activations,
    conv,
    elementwise,
    indexing,
    linalg,
    mathfn,
    nn,
    reductions,
    shape,
    special_math,
    structural,
)
from ._checks import CheckedRuntimeError
from ._identity import attrs_key
from ._registry import CATALOG, REQUIRED, In, OpDef, Sample, define, get
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
    "result_type",
    "scalar_meta",
]
