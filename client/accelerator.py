"""remotegrad.accelerator: torch.accelerator as a CPU-only PyTorch answers it.

Current PyTorch examples pick their device with
`torch.accelerator.current_accelerator() if torch.accelerator.is_available() else "cpu"`.
The client holds no device memory and never chooses where arithmetic runs (GPU workers of
the cluster compute on their own GPUs whatever the program asks), so this reports no
accelerator, as remotegrad.cuda does, and such programs take the "cpu" branch."""

from __future__ import annotations

__all__ = ["current_accelerator", "current_device_idx", "current_device_index",
           "device_count", "is_available", "set_device_idx", "set_device_index",
           "synchronize"]

_NONE = "Cannot access accelerator device when none is available."


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False):
    return None


def device_count() -> int:
    return 0


def current_device_index() -> int:
    raise RuntimeError(_NONE)


def set_device_index(device) -> None:
    raise RuntimeError(_NONE)


def synchronize(device=None) -> None:
    raise RuntimeError(_NONE)


def current_device_idx() -> int:
    from ._warn import warn_user
    warn_user("Use `current_device_index` instead.", FutureWarning)
    return current_device_index()


def set_device_idx(device) -> None:
    from ._warn import warn_user
    warn_user("Use `set_device_index` instead.", FutureWarning)
    set_device_index(device)
