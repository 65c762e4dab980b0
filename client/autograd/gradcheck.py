"""torch.autograd.gradcheck and gradgradcheck: a function's analytical gradient (what
backward computes) against central finite differences, in the inputs' precision (float64 is
what the check is meant for), with PyTorch's signature, tolerances and messages.

This is PyTorch's slow mode: the full Jacobian both ways, each entry compared as
|analytical - numerical| <= atol + rtol * |numerical|; check_forward_ad=True compares the
Jacobian forward_ad's dual numbers give too (derived from the reverse rules, so it checks
the same rules once more, through the double-vjp). PyTorch's extra checks around it
(reentrancy, undefined gradients, batched gradients) are not made here; asking for the ones
that change the result raises NotImplementedError."""

from __future__ import annotations

import numpy as np

from .. import _creation
from .._autograd import batch
from .._autograd import grad as _grad
from .._tensor import Tensor
from .._warn import warn_user

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """A gradient that does not match its finite differences (PyTorch's class)."""


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _differentiable(inputs: tuple) -> list[int]:
    return [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


def _check_inputs(inputs: tuple) -> list[int]:
    diff = _differentiable(inputs)
    for i in diff:
        if inputs[i].dtype.name not in ("float64", "complex128", "complex64"):
            warn_user(f"Input #{i} requires gradient and is not a double precision floating "
                      "point or complex. This check will likely fail if all the inputs are not "
                      "of double precision floating point or complex. ")
    if not diff:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of them have requires_grad=True.")
    return diff


def _outputs(func, inputs: tuple) -> tuple:
    return tuple(o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor))


def _numerical(func, inputs: tuple, diff: list[int], eps: float) -> list[list[np.ndarray]]:
    """[output][input] Jacobians, (input numel, output numel), of every tensor output:
    (f(x + eps) - f(x - eps)) / 2 eps, one input element at a time (every evaluation
    recorded first, then read in one round trip)."""
    moved_outputs: dict[int, list] = {}
    for i in diff:
        base = inputs[i].detach().numpy().astype(inputs[i].dtype.name, copy=True)
        flat, per_element = base.reshape(-1), []
        for j in range(flat.size):
            pair = []
            for step in (eps, -eps):
                moved = flat.copy()
                moved[j] += step
                args = list(inputs)
                # still requiring grad: gradgradcheck's function differentiates inside
                args[i] = _creation.tensor(moved.reshape(base.shape), dtype=inputs[i].dtype,
                                           requires_grad=True)
                pair.append([o.detach() for o in _outputs(func, tuple(args))])
            per_element.append(pair)
        moved_outputs[i] = per_element
    batch([o for per in moved_outputs.values() for pair in per for outs in pair for o in outs])

    def flat64(o: Tensor) -> np.ndarray:
        return o.numpy().astype(np.float64).reshape(-1)

    columns = {i: [[(flat64(a) - flat64(b)) / (2 * eps) for a, b in zip(*pair)]
                   for pair in per] for i, per in moved_outputs.items()}
    n_out = len(next(iter(columns.values()))[0]) if columns else 0
    return [[np.stack([row[k] for row in columns[i]]) if columns[i] else
             np.zeros((0, 0)) for i in diff] for k in range(n_out)]


def _analytical(output: Tensor, inputs: tuple, diff: list[int]) -> list[np.ndarray]:
    """[input] Jacobians of one output, (input numel, output numel): a backward per output
    element, seeded with that element's one-hot."""
    n = output.numel()
    jacobians = [np.zeros((inputs[i].numel(), n)) for i in diff]
    per_element = []
    for k in range(n):
        seed = np.zeros(n, dtype=output.dtype.name)
        seed[k] = 1
        seed = _creation.tensor(seed.reshape(tuple(output.shape)), dtype=output.dtype)
        per_element.append(_grad(output, [inputs[i] for i in diff], seed, retain_graph=True,
                                 allow_unused=True))
    batch([g for grads in per_element for g in grads])  # read in one round trip
    for k, grads in enumerate(per_element):
        for jac, g in zip(jacobians, grads):
            if g is not None:
                jac[:, k] = g.detach().numpy().reshape(-1)
    return jacobians


def _analytical_forward(func, inputs: tuple, diff: list[int], n_out: int
                        ) -> list[list[np.ndarray]]:
    """[output][input] Jacobians, (input numel, output numel), by forward mode: the tangents
    of the outputs for a one-hot tangent of each input element (forward_ad's dual numbers;
    every column recorded first, then read in one round trip)."""
    from . import forward_ad
    columns = []
    with forward_ad.dual_level():
        for i in diff:
            x, per_element = inputs[i], []
            for j in range(x.numel()):
                basis = np.zeros(x.numel(), dtype=x.dtype.name)
                basis[j] = 1
                args = list(inputs)
                args[i] = forward_ad.make_dual(x, _creation.tensor(
                    basis.reshape(tuple(x.shape)), dtype=x.dtype))
                outs = _outputs(func, tuple(args))
                per_element.append([forward_ad.unpack_dual(o).tangent for o in outs])
            columns.append(per_element)
        batch([t for per in columns for col in per for t in col if t is not None])
        return [[np.stack([np.zeros(0) if col[k] is None else
                           col[k].detach().numpy().astype(np.float64).reshape(-1)
                           for col in per]) if per else np.zeros((0, 0))
                 for per in columns] for k in range(n_out)]


def _compare(analytical, numerical, outputs, mode: str, atol: float, rtol: float) -> None:
    for i, (_, output) in enumerate(outputs):
        for j, (a, n) in enumerate(zip(analytical[i], numerical[i])):
            if a.shape != n.shape:  # an output no input reaches: its tangents are None
                a = np.zeros_like(n)
            if not np.all(np.abs(a - n) <= atol + rtol * np.abs(n)):
                raise GradcheckError(
                    f"Jacobian {mode}mismatch for output {i} with respect to input {j},\n"
                    f"numerical:{_print(n, output.dtype)}\n"
                    f"analytical:{_print(a, output.dtype)}\n")


def _print(array: np.ndarray, dtype) -> str:
    return repr(_creation.tensor(array, dtype=dtype))


def _unsupported(**flags: bool) -> None:
    for name, value in flags.items():
        if value:
            raise NotImplementedError(f"gradcheck: {name}=True is not supported by remotegrad "
                                      "(only the backward-mode Jacobian check is made)")


def _slow_gradcheck(func, inputs: tuple, eps: float, atol: float, rtol: float,
                    backward: bool = True, forward: bool = False) -> bool:
    """The backward-mode check, then (check_forward_ad) the forward-mode one, as PyTorch
    orders them."""
    diff = _check_inputs(inputs)
    all_outputs = _outputs(func, inputs)
    numerical = _numerical(func, inputs, diff, eps)
    outputs = [(k, o) for k, o in enumerate(all_outputs) if o.requires_grad]
    if not outputs:  # then the function must not depend on its inputs at all
        for per_input in numerical:
            for n in per_input:
                if not np.allclose(n, 0.0, rtol=rtol, atol=atol):
                    raise GradcheckError("Numerical gradient for function expected to be zero")
        return True
    numerical = [numerical[k] for k, _ in outputs]
    if backward:
        _compare([_analytical(o, inputs, diff) for _, o in outputs], numerical, outputs, "",
                 atol, rtol)
    if forward:
        tangents = _analytical_forward(func, inputs, diff, len(all_outputs))
        _compare([tangents[k] for k, _ in outputs], numerical, outputs,
                 "computed with forward mode ", atol, rtol)
    return True


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None) -> bool:
    """True when func's gradients with respect to its inputs that require grad match
    finite differences; else GradcheckError (or False with raise_exception=False).
    fast_mode is accepted and makes the full check (the same verdict, more work)."""
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad "
                             "to be True")
    _unsupported(check_batched_grad=check_batched_grad,
                 check_batched_forward_grad=check_batched_forward_grad)
    try:
        return _slow_gradcheck(func, _as_tuple(inputs), eps, atol, rtol, check_backward_ad,
                               check_forward_ad)
    except GradcheckError:
        if raise_exception:
            raise
        return False


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False,
                  masked: bool = False) -> bool:
    """gradcheck of func's backward: the gradients of func's outputs, seeded with
    grad_outputs (random in [-1, 1) when not given), as a function of the inputs and the
    seeds."""
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError("Expected at least one of check_fwd_over_rev or check_rev_over_rev "
                             "to be True")
    if check_undefined_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_undefined_grad=True requires check_rev_over_rev to "
                             "be True")
    _unsupported(check_batched_grad=check_batched_grad)
    inputs = _as_tuple(inputs)
    diff = _differentiable(inputs)
    if grad_outputs is None:
        outputs = [o for o in _outputs(func, inputs) if o.requires_grad]
        grad_outputs = tuple(
            (_creation.rand(*o.shape, dtype=o.dtype) * 2 - 1).requires_grad_(True)
            for o in outputs)
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)

    def backward_of(*args):
        outputs = [o for o in _outputs(func, args[:n_in]) if o.requires_grad]
        grads = _grad(outputs, [args[i] for i in diff], args[n_in:], create_graph=True,
                      allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(backward_of, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, check_forward_ad=check_fwd_over_rev,
                     check_backward_ad=check_rev_over_rev)
