"""Runs of elementwise steps fused into one kernel (CuPy).

After a Program's checked first run, consecutive elementwise steps (plain ufunc calls, and
ops whose catalog entry gives a `fusable` form) with one output shape form a group. The
group is written as one Python function over those calls, and the array module's `fuse`
(cupy.fuse) compiles it into a single kernel: intermediates stay in registers instead of
device memory, and N launches become one. A group returns only what is needed after it
(later steps, targets).

Why runs in step order and not any connected set: a step between two members could
depend on one and feed the other, and fusing across it would need a dependence check.
Runs need none, and the chains that matter (an activation's forward, then its gradient)
are runs in the order the engine emits them.

A fused kernel is checked on its first call: if an output has another dtype or shape
than the graph says (promotion inside a fused kernel differing from the separate
ufuncs'), or compiling fails, the group runs as its separate ufunc calls from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MIN_STEPS = 2      # a single step is already one kernel
MAX_STEPS = 256    # bounds the generated kernel's size and compile time


@dataclass(frozen=True)
class Group:
    start: int              # step positions [start, end)
    end: int
    inputs: tuple[int, ...]   # slots read from outside the group
    outputs: tuple[int, ...]  # slots the group must produce
    call: Callable[..., Any]  # returns one array, or a tuple when several outputs


def runs(steps: Sequence[tuple], calls: dict, metas: dict) -> list[tuple[int, int]]:
    """[start, end) of each run of fusible steps (`calls`: position -> elementwise function)
    with one output shape, MIN_STEPS or more."""

    def shape(pos):  # the run key of a fusible step, None for any other
        if pos >= len(steps) or pos not in calls:
            return None
        s = metas[steps[pos][2]].shape
        return None if 0 in s else s  # empty arrays: nothing to gain, edge cases to lose

    found, start, run_shape = [], None, None
    for pos in range(len(steps) + 1):
        here = shape(pos)
        if start is not None and (here != run_shape or pos - start == MAX_STEPS):
            if pos - start >= MIN_STEPS:
                found.append((start, pos))
            start = None
        if start is None and here is not None:
            start, run_shape = pos, here
    return found


def build(steps, calls, metas, targets, xp) -> dict[int, Group]:
    """{start position: Group} for every run (see module doc)."""
    fuser = getattr(xp, "fuse", None)
    read_at: dict[int, int] = {}  # slot -> last step position that reads it
    for pos, (_, ins, _, _) in enumerate(steps):
        for i in ins:
            read_at[i] = pos
    keep = set(targets)
    groups = {}
    for start, end in runs(steps, calls, metas):
        made = {steps[p][2] for p in range(start, end)}
        inputs = tuple(dict.fromkeys(i for p in range(start, end) for i in steps[p][1]
                                     if i not in made))
        outputs = tuple(o for p in range(start, end) for o in [steps[p][2]]
                        if o in keep or read_at.get(o, -1) >= end)
        plain = _function(steps[start:end], calls, start, inputs, outputs)
        kernel = fuser(plain) if fuser is not None else plain
        check = [metas[o] for o in outputs]
        groups[start] = Group(start, end, inputs, outputs, _Checked(kernel, plain, check, xp))
    return groups


def _function(steps, calls, start, inputs, outputs) -> Callable[..., Any]:
    """def fused(v2, v5): v7 = u0(v2, v5); ...; return v8 — elementwise calls only."""
    env: dict[str, Any] = {}
    lines = [f"def fused_{start}({', '.join(f'v{i}' for i in inputs)}):"]
    for k, (_, ins, out, _) in enumerate(steps):
        env[f"u{k}"] = calls[start + k]
        lines.append(f"    v{out} = u{k}({', '.join(f'v{i}' for i in ins)})")
    lines.append(f"    return {', '.join(f'v{o}' for o in outputs)}")
    exec(compile("\n".join(lines), f"<remotegrad fused group {start}>", "exec"), env)  # noqa: S102
    return env[f"fused_{start}"]


class _Checked:
    """The fused kernel, checked on its first call; the plain function if that fails."""

    __slots__ = ("_check", "_impl", "_kernel", "_plain", "_xp", "fused")

    def __init__(self, kernel, plain, check, xp) -> None:
        self._kernel, self._plain, self._check, self._xp = kernel, plain, check, xp
        self._impl = self._first
        self.fused: bool | None = None  # None until the first call decides

    def __call__(self, *args):
        return self._impl(*args)

    def _first(self, *args):
        try:
            result = self._kernel(*args)
            values = result if len(self._check) > 1 else (result,)
            ok = len(values) == len(self._check) and all(
                isinstance(v, self._xp.ndarray) and v.dtype.name == m.dtype
                and tuple(v.shape) == m.shape for v, m in zip(values, self._check))
        except Exception:  # noqa: BLE001  (the plain calls below raise what is real)
            ok = False
        self.fused = ok and self._kernel is not self._plain
        self._impl = self._kernel if ok else self._plain
        return result if ok else self._plain(*args)
