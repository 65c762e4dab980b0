"""remotegrad.cuda: the device-query surface PyTorch code touches (`torch.cuda.is_available()`).

The client never holds device memory; the cluster decides where arithmetic runs, so these
report no local CUDA device and seeding goes to the client's generator."""

from __future__ import annotations

__all__ = ["device_count", "is_available", "manual_seed", "manual_seed_all", "synchronize"]


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    from ._creation import manual_seed as seed_client
    seed_client(seed)


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    pass
