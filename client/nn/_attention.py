"""nn.MultiheadAttention, composed from catalog ops with PyTorch's parameter layout
(packed in_proj_weight/in_proj_bias, out_proj), masks and head-averaged weights."""

from __future__ import annotations

import math

from .. import _creation
from .._tensor import Tensor, apply
from . import functional as F
from . import init
from ._layers import Linear
from ._module import Module, Parameter
from .._to import check_device


class NonDynamicallyQuantizableLinear(Linear):
    """The name PyTorch gives MultiheadAttention's output projection."""


class MultiheadAttention(Module):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 bias: bool = True, add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 device=None, dtype=None) -> None:
        check_device(device)
        super().__init__()
        if add_bias_kv or add_zero_attn or (kdim not in (None, embed_dim)) or (
                vdim not in (None, embed_dim)):
            raise NotImplementedError("MultiheadAttention: add_bias_kv, add_zero_attn and "
                                      "kdim/vdim other than embed_dim are not supported")
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.batch_first, self.head_dim = batch_first, embed_dim // num_heads
        self.in_proj_weight = Parameter(_creation.empty(3 * embed_dim, embed_dim, dtype=dtype))
        if bias:
            self.in_proj_bias = Parameter(_creation.zeros(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        dtype=dtype)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _project(self, x: Tensor, index: int) -> Tensor:
        e = self.embed_dim
        w = self.in_proj_weight[index * e:(index + 1) * e]
        b = None if self.in_proj_bias is None else self.in_proj_bias[index * e:(index + 1) * e]
        out = F.linear(x, w, b)                       # (L, N, E)
        length, batch = out.shape[0], out.shape[1]
        return out.reshape(length, batch * self.num_heads, self.head_dim).transpose(0, 1)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        _check_mask(key_padding_mask, "key_padding_mask", attn_mask, "attn_mask")
        _check_mask(attn_mask, "attn_mask")
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        length, batch, source = query.shape[0], query.shape[1], key.shape[0]
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        scores = (q @ k.transpose(1, 2)) * (1 / math.sqrt(self.head_dim))  # (N*h, L, S)
        scores = self._masked(scores, attn_mask, key_padding_mask, batch, length, source,
                              is_causal)
        weights = F.softmax(scores, dim=-1)
        if self.dropout and self.training:
            weights = F.dropout(weights, self.dropout)
        out = (weights @ v).transpose(0, 1).reshape(length, batch, self.embed_dim)
        out = self.out_proj(out)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        per_head = weights.reshape(batch, self.num_heads, length, source)
        result = per_head.mean(1) if average_attn_weights else per_head
        return out, result if batched else result.squeeze(0)

    def _masked(self, scores: Tensor, attn_mask, key_padding_mask, batch: int, length: int,
                source: int, is_causal: bool) -> Tensor:
        import numpy as np
        if is_causal and attn_mask is None:
            attn_mask = Tensor._from_array(~np.tril(np.ones((length, source), dtype=bool)))
        if attn_mask is not None:
            if attn_mask.dtype.name == "bool":
                scores = apply("where", attn_mask, float("-inf"), scores)
            else:
                scores = scores + attn_mask
        if key_padding_mask is not None:
            mask = key_padding_mask.reshape(batch, 1, 1, source).expand(
                batch, self.num_heads, 1, source).reshape(batch * self.num_heads, 1, source)
            if mask.dtype.name == "bool":
                scores = apply("where", mask, float("-inf"), scores)
            else:  # a float mask is added, as PyTorch's canonical form of both
                scores = scores + mask
        return scores


def _check_mask(mask, name: str, other=None, other_name: str = "") -> None:
    """PyTorch's _canonical_mask checks: bool or float only; a warning when the padding
    mask and the attention mask are of different types."""
    if mask is None:
        return
    kind = mask.dtype.name
    if kind != "bool" and not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported")
    if other is not None and other.dtype.name != kind:
        from .._warn import warn_user
        warn_user(f"Support for mismatched {name} and {other_name} is deprecated. Use same "
                  "type for both instead.")
