"""torch.memory_format and its four values, which code passes to zeros_like, clone, .to
and friends (PyTorch's own optimisers use torch.preserve_format). Every value is accepted;
only the default layout is modelled: the client keeps PyTorch's strides of views
(_strides.py), and every other result is laid out contiguously whatever the format, so
`.to(memory_format=torch.channels_last)` keeps contiguous strides and
`.is_contiguous(memory_format=<another format>)` is always True, where PyTorch's strides
change (and it answers False for a plain 4-d tensor and channels_last)."""

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
