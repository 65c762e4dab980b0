"""The Optimizer base: parameter groups, per-parameter state, zero_grad, state_dict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .._grad_mode import enable_grad, no_grad
from .._session import flush
from .._tensor import Tensor

# PyTorch's wording for a hyperparameter out of range: "Invalid <label>: <value>".
_LABELS = {"lr": "learning rate", "eps": "epsilon value"}


def check_nonnegative(**values: float) -> None:
    """Refuse a negative hyperparameter as torch.optim does, checked in the order given."""
    for name, value in values.items():
        if not 0.0 <= value:
            raise ValueError(f"Invalid {_LABELS.get(name, name + ' value')}: {value}")


def check_betas(betas) -> None:
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")


def scalar_tensor(value: float) -> Tensor:
    """A 0-d state entry (step, mu_product) in PyTorch's scalar dtype: float64 when that is
    the default dtype, else float32."""
    from .. import _creation, _dtypes
    dtype = _dtypes.float64 if _dtypes.get_default_dtype().name == "float64" else (
        _dtypes.float32)
    return _creation.tensor(value, dtype=dtype)


def step_scalar(value: float, like: Tensor) -> Tensor:
    """A number that changes from step to step (a bias correction, a decayed rate) as a
    0-d tensor of the parameter's dtype: data, where a Python number would be part of the
    graph's structure and make every step's graph new to the engine (planned again). In
    the parameter's dtype it is the value PyTorch's kernels use (a Python scalar is cast
    to the tensor's dtype there)."""
    from .. import _creation
    return _creation.tensor(value, dtype=like.dtype)


def next_step(state: dict) -> float:
    """Count one more step in `state["step"]` (a 0-d tensor, as PyTorch keeps it)."""
    step = state["step"].item() + 1
    state["step"] = scalar_tensor(float(step))
    return step


def zero_grads(params: Iterable, set_to_none: bool = True) -> None:
    """Reset the gradients of `params` (PyTorch's zero_grad, for modules and optimisers)."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad = p.grad.detach().zero_()


class Optimizer:
    """As torch.optim.Optimizer. Updates run under no_grad as in-place node replacement:
    a parameter's new value is a lazy graph node, computed with the next round trip."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got " + type(params).__name__)
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def __getstate__(self) -> dict:
        # an lr scheduler's wrapper of step (and what it notes) is no part of the state, as
        # PyTorch pickles an optimiser without it
        return {k: v for k, v in self.__dict__.items() if k not in ("step", "_opt_called")}

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient (lazy: each update is a
        graph node, computed and kept in the cluster with the next round trip)."""
        loss = self._closure(closure)
        # The previous step's updates, if nothing has read them yet, are sent now: a loop
        # that reads rarely sends one step's graph at a time (see Session.flush).
        flush()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, group)
        return loss

    def _update(self, p, group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _closure(self, closure: Callable[[], Any] | None):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def state_dict(self) -> dict[str, Any]:
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        params = [p for g in self.param_groups for p in g["params"]]
        for mine, saved in zip(self.param_groups, groups):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
            mine.update({k: v for k, v in saved.items() if k != "params"})
        self.state = defaultdict(dict)
        for i, s in state_dict["state"].items():
            self.state[params[int(i)]] = dict(s)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"
