"""remotegrad: PyTorch-style autograd, computed by a remote cluster.

    import remotegrad as torch
    x = torch.ones(3, 3, requires_grad=True)
    (x * 2).sum().backward()      # the arithmetic runs on the cluster's workers
"""

from __future__ import annotations

from . import _dtypes
from ._creation import (
    Generator,
    arange,
    as_tensor,
    default_generator,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    initial_seed,
    linspace,
    logspace,
    manual_seed,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    seed,
    tensor,
    zeros,
    zeros_like,
)
from ._dtypes import (
    bool,
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    short,
    uint8,
)
from ._errors import (
    AuthenticationError,
    ClusterUnavailableError,
    DeadlineExceededError,
    GraphRefusedError,
    RemotegradError,
    RemotegradIndexError,
    RemotegradRuntimeError,
    RemotegradValueError,
    ResourceExhaustedError,
)
from ._format import set_printoptions
from ._grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from ._memory_format import (channels_last, channels_last_3d, contiguous_format,
                             memory_format, preserve_format)
from ._size import Size, device
from ._tensor import Tensor
from . import _functional as _functional_module  # noqa: E402

globals().update(_functional_module.FUNCTIONS)

from . import autograd, cuda, nn, optim, utils  # noqa: E402
from . import accelerator, onnx, serialization, special  # noqa: E402
from . import func  # noqa: E402  (torch.func: pure Python over modules loaded above)
from ._default_device import get_default_device, set_default_device  # noqa: E402
from ._default_dtype import set_default_dtype, set_default_tensor_type  # noqa: E402
from . import _alias  # noqa: E402
from ._compare import allclose, equal, isclose  # noqa: E402
from ._serialization import load, save  # noqa: E402

_alias.install()  # sys.modules["torch"] = remotegrad: `import torch.nn.modules` finds ours

__all__ = [
    "accelerator", "allclose", "cuda", "equal", "get_default_device", "isclose", "load",
    "onnx", "save", "serialization", "set_default_device", "set_default_dtype",
    "set_default_tensor_type", "utils",
    "AuthenticationError", "ClusterUnavailableError", "DeadlineExceededError", "Generator",
    "GraphRefusedError", "RemotegradError", "RemotegradIndexError", "RemotegradRuntimeError",
    "RemotegradValueError", "ResourceExhaustedError", "Size", "Tensor",
    "arange", "as_tensor", "autograd", "bool", "connect", "default_generator", "device",
    "double", "dtype", "empty", "empty_like", "enable_grad", "eye", "float", "float16",
    "float32", "float64", "from_numpy", "full", "full_like", "get_default_dtype", "half",
    "inference_mode", "initial_seed", "int", "int8", "int16", "int32", "int64",
    "is_grad_enabled", "is_inference_mode_enabled", "linspace", "logspace", "long",
    "manual_seed", "nn", "no_grad", "normal", "ones", "ones_like", "optim", "rand",
    "rand_like", "randint", "randint_like", "randn", "randn_like", "randperm", "seed",
    "set_grad_enabled", "set_printoptions", "short", "tensor", "uint8", "zeros", "zeros_like",
    "channels_last", "channels_last_3d", "contiguous_format", "memory_format", "preserve_format",
]
__all__ += sorted(_functional_module.FUNCTIONS)
__all__ += ["func", "special"]
__version__ = "0.1.0"
del _dtypes


def __getattr__(name: str):
    # connect() brings in grpc and the generated code: only when a session is wanted, so
    # that `import remotegrad.worker.engine` works where they are missing or differ.
    if name == "connect":
        from ._session import connect
        return connect
    raise AttributeError(f"module 'remotegrad' has no attribute {name!r}")
