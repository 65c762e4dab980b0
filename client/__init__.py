"""remotegrad: PyTorch-style autograd, computed by a remote cluster.

    import remotegrad as torch
    x = torch.ones(3, 3, requires_grad=True)
    (x * 2).sum().backward()      # the arithmetic runs on the cluster's workers
"""

from __future__ import annotations

from . import (
                        _dtypes,
                        autograd,
)
from ._creation import (
                        as_tensor,
                        empty,
                        from_numpy,
                        full,
                        manual_seed,
                        ones,
                        ones_like,
                        rand,
                        randn,
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
                        ResourceExhaustedError,
)
from ._format import set_printoptions
from ._grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from ._session import connect
from ._size import Size, device
from ._tensor import Tensor

__all__ = [
                        "AuthenticationError",
                        "ClusterUnavailableError",
                        "DeadlineExceededError",
                        "GraphRefusedError",
                        "RemotegradError",
                        "ResourceExhaustedError",
                        "Size",
                        "Tensor",
                        "as_tensor",
                        "autograd",
                        "bool",
                        "connect",
                        "device",
                        "double",
                        "dtype",
                        "empty",
                        "enable_grad",
                        "float",
                        "float16",
                        "float32",
                        "float64",
                        "from_numpy",
                        "full",
                        "get_default_dtype",
                        "half",
                        "inference_mode",
                        "int",
                        "int8",
                        "int16",
                        "int32",
                        "int64",
                        "is_grad_enabled",
                        "long",
                        "manual_seed",
                        "no_grad",
                        "ones",
                        "ones_like",
                        "rand",
                        "randn",
                        "set_grad_enabled",
                        "set_printoptions",
                        "short",
                        "tensor",
                        "uint8",
                        "zeros",
                        "zeros_like",
]
__version__ = "0.1.0"
del _dtypes
