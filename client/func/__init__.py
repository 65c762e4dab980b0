"""remotegrad.func: torch.func's composable transforms, computed by the cluster.

    import remotegrad as torch
    from torch.func import grad, vmap, functional_call
    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)   # one round trip

Every transform records into the same lazy graph as the rest of remotegrad: gradients are
`grad` nodes the worker expands, and a transform's results are fetched together, in one
round trip, when one of them is read.

- Reverse mode (grad, grad_and_value, vjp, jacrev) is autograd.grad at stand-ins of the
  inputs (see _core): transforms nest (jacrev(jacrev(f)), grad(grad(f))) and compose with
  ordinary autograd.
- Forward mode (jvp, jacfwd, linearize, hessian) is derived from the reverse rules by the
  double-vjp trick: the vjp u ↦ Jᵀu is linear in u, so its vjp along a tangent v is J·v
  (see _forward). No op needs a forward rule of its own.
- vmap traces the function once and records each op once over the whole batch through
  the catalog's batching rule for it (OpDef.batch; see _vmap and _batching): a graph the
  size of one slice's; per slice where the trace cannot stand for every slice.
"""

from ._forward import hessian, jacfwd, jvp, linearize
from ._module import functional_call, stack_module_state
from ._reverse import grad, grad_and_value, jacrev, vjp
from ._vmap import vmap

__all__ = ["functional_call", "functionalize", "grad", "grad_and_value", "hessian", "jacfwd",
           "jacrev", "jvp", "linearize", "stack_module_state", "vjp", "vmap"]


def functionalize(func, *, remove: str = "mutations"):
    """func itself: a remotegrad graph is functional already (an in-place op gives the
    tensor a new node, never changes one), so there are no mutations to remove."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError("functionalize(f, remove='mutations'): received invalid argument "
                           f"for remove={remove}.")
    return func
