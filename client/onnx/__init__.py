"""remotegrad.onnx: importable, as training scripts import torch.onnx at the top; exporting
is not supported.

torch.onnx.export traces (or torch.export-s) a model into an operator graph on the
exporting machine. remotegrad's graphs are built lazily on the client from its own op
catalog and run by a cluster; there is no tracer or ONNX operator mapping, so exporting
raises NotImplementedError. To export, load the saved state_dict into the same model
written for PyTorch and export it there."""

from __future__ import annotations

__all__ = ["dynamo_export", "export", "is_in_onnx_export", "register_custom_op_symbolic",
           "unregister_custom_op_symbolic"]


def _unsupported(what: str):
    raise NotImplementedError(
        f"remotegrad does not support {what}: it has no tracer or ONNX exporter (graphs "
        "are built lazily and run by the cluster). Save the weights with "
        "remotegrad.save(model.state_dict(), path), load them into the PyTorch model and "
        "export it with PyTorch.")


def export(model, args=(), f=None, *posargs, **kwargs):
    _unsupported("torch.onnx.export (ONNX export)")


def dynamo_export(model, *args, **kwargs):
    _unsupported("torch.onnx.dynamo_export (ONNX export)")


def register_custom_op_symbolic(symbolic_name: str, symbolic_fn, opset_version: int):
    _unsupported("torch.onnx.register_custom_op_symbolic (ONNX export)")


def unregister_custom_op_symbolic(symbolic_name: str, opset_version: int):
    _unsupported("torch.onnx.unregister_custom_op_symbolic (ONNX export)")


def is_in_onnx_export() -> bool:
    """False: no export is ever running (model code branches on this)."""
    return False
