"""torch.memory_format and its four values, which code passes to zeros_like, clone, .to
and friends (PyTorch's own optimisers use torch.preserve_format). A remotegrad tensor has
no strides of its own to lay out (the worker owns the memory), so every value is accepted
and each result is contiguous: `.is_contiguous()` is True after `.to(memory_format=
torch.channels_last)`, where PyTorch's is False."""

from __future__ import annotations

__all__ = ["channels_last", "channels_last_3d", "contiguous_format", "memory_format",
           "preserve_format"]


class memory_format:
    __slots__ = ("_name",)

    def __new__(cls, *args, **kwargs):
        raise TypeError("cannot create 'torch.memory_format' instances")

    @classmethod
    def _make(cls, name: str) -> memory_format:
        self = object.__new__(cls)
        self._name = name
        return self

    def __repr__(self) -> str:
        return f"torch.{self._name}"

    __str__ = __repr__

    def __reduce__(self) -> str:
        return self._name  # pickled by name: the module's own object comes back


contiguous_format = memory_format._make("contiguous_format")
preserve_format = memory_format._make("preserve_format")
channels_last = memory_format._make("channels_last")
channels_last_3d = memory_format._make("channels_last_3d")
