"""torch.set_default_device / get_default_device, answered as a CPU-only PyTorch answers.

A remotegrad tensor lives on the client as "cpu"; where its arithmetic runs (a NumPy or a
CuPy worker) is the cluster's choice, not the program's, so the only default device a
program can pick is the CPU. Other device types fail with the errors a CPU-only PyTorch
build gives for them."""

from __future__ import annotations

from ._size import device as _device_class

# the device types PyTorch's device-string parser knows, in its own order (its message)
_KNOWN = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
          "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
          "privateuseone")
_COMPILED = {"cuda": "CUDA", "xpu": "XPU"}  # AssertionError "Torch not compiled with ..."

_default = _device_class("cpu")
_explicit = False  # set_default_device(<a device>) is in force (not None)


def _parse(spec) -> _device_class:
    if isinstance(spec, _device_class):
        return spec
    if isinstance(spec, int):  # an index means the current accelerator
        raise RuntimeError("Cannot access accelerator device when none is available.")
    if not isinstance(spec, str):
        raise TypeError(f"set_default_device(): argument 'device' must be a device, string or "
                        f"int, not {type(spec).__name__}")
    if not spec:
        raise RuntimeError("Device string must not be empty")
    kind, _, index = spec.partition(":")
    if kind not in _KNOWN:
        raise RuntimeError(f"Expected one of {', '.join(_KNOWN)} device type at start of "
                           f"device string: {spec}")
    return _device_class(kind, int(index) if index.isdigit() else None)


def set_default_device(device) -> None:
    """Make `device` the default for new tensors: only the CPU (or None, the same) here."""
    global _default, _explicit
    chosen = _device_class("cpu") if device is None else _parse(device)
    if chosen.type in _COMPILED:
        raise AssertionError(f"Torch not compiled with {_COMPILED[chosen.type]} enabled")
    if chosen.type == "meta":
        raise NotImplementedError("set_default_device('meta'): remotegrad has no meta "
                                  "tensors (tensors without data); only 'cpu' is supported")
    if chosen.type != "cpu":
        raise RuntimeError(f"PyTorch is not linked with support for {chosen.type} devices")
    _default, _explicit = chosen, device is not None


def get_default_device() -> _device_class:
    return _default


def is_explicit() -> bool:
    """Whether a default device is in force. PyTorch then runs factories under a
    TorchFunctionMode, which also turns its fused fast paths (nn.TransformerEncoder's
    nested tensors) off; remotegrad's encoder mirrors that visible difference."""
    return _explicit
