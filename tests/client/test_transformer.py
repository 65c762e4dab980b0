"""nn.Transformer and its encoder/decoder layers and stacks against torch.nn: reprs,
state_dict keys, forward (eval mode, weights copied from the torch module) with and without
masks, gradients, warnings and argument errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import remotegrad as rg
from torchref import close

R = np.random.default_rng(21)
E, H, FF = 8, 2, 16


def _copy(ours, theirs):
    ours.load_state_dict({k: rg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    return ours.eval(), theirs.eval()


def _build(lib, name, *args, **kwargs):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        module = getattr(lib.nn, name)(*args, **kwargs)
    return module, [str(w.message) for w in seen]


def _twins(name, *args, **kwargs):
    torch.manual_seed(0)
    theirs, warned_t = _build(torch, name, *args, **kwargs)
    ours, warned_o = _build(rg, name, *args, **kwargs)
    assert warned_o == warned_t
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return _copy(ours, theirs)


def _layers(lib, kind, **kwargs):
    return getattr(lib.nn, kind)(E, H, dim_feedforward=FF, **kwargs)


def _seq(length, batch, batch_first):
    x = R.standard_normal((batch, length, E) if batch_first else (length, batch, E))
    return x.astype("float32")


def _masks(length, source, batch):
    pad = np.zeros((batch, source), dtype=bool)
    pad[1, -2:] = True                       # padding at the end of one row
    causal = np.triu(np.full((length, source), -np.inf, dtype="float32"), 1)
    return pad, causal


def _same_forward(ours, theirs, inputs, kwargs, tol=1e-5):
    def run(lib, module):
        args = [lib.tensor(a, requires_grad=True) for a in inputs]
        kw = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = module(*args, **kw)
        weights = np.random.default_rng(0).standard_normal(tuple(out.shape))
        (out * lib.tensor(weights.astype("float32"))).sum().backward()
        return (out, [a.grad for a in args], dict(module.named_parameters()),
                [str(w.message) for w in seen])
    (out_o, grads_o, params_o, warned_o) = run(rg, ours)
    (out_t, grads_t, params_t, warned_t) = run(torch, theirs)
    assert warned_o == warned_t, "warnings"
    close(out_o, out_t, rtol=tol, atol=tol, what=f"output {list(kwargs)}")
    for i, (a, b) in enumerate(zip(grads_o, grads_t)):
        close(a, b, rtol=1e-4, atol=1e-5, what=f"input {i} grad")
    for name, p in params_t.items():
        if p.grad is not None:
            close(params_o[name].grad, p.grad, rtol=1e-4, atol=1e-5, what=f"{name} grad")
    ours.zero_grad(), theirs.zero_grad()


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer(batch_first, norm_first):
    ours, theirs = _twins("TransformerEncoderLayer", E, H, dim_feedforward=FF,
                          batch_first=batch_first, norm_first=norm_first)
    src = _seq(5, 3, batch_first)
    pad, causal = _masks(5, 5, 3)
    for kwargs in ({}, {"src_key_padding_mask": pad}, {"src_mask": causal},
                   {"src_mask": causal, "is_causal": True},
                   {"src_mask": causal, "src_key_padding_mask": pad}):  # mismatched: warns
        _same_forward(ours, theirs, [src], kwargs)


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_decoder_layer(activation):
    ours, theirs = _twins("TransformerDecoderLayer", E, H, dim_feedforward=FF,
                          activation=activation, norm_first=activation == "gelu")
    tgt, memory = _seq(4, 3, False), _seq(6, 3, False)
    pad, causal = _masks(4, 4, 3)
    mem_pad, _ = _masks(4, 6, 3)
    for kwargs in ({}, {"tgt_mask": causal, "tgt_key_padding_mask": pad},
                   {"memory_key_padding_mask": mem_pad}):
        _same_forward(ours, theirs, [tgt, memory], kwargs)


def test_stacks_and_their_warning():
    layer_t, layer_o = _layers(torch, "TransformerEncoderLayer"), _layers(
        rg, "TransformerEncoderLayer")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        theirs = torch.nn.TransformerEncoder(layer_t, 2, torch.nn.LayerNorm(E))
        ours = rg.nn.TransformerEncoder(layer_o, 2, rg.nn.LayerNorm(E))
    assert len(seen) == 2 and str(seen[0].message) == str(seen[1].message)
    assert "batch_first was not True" in str(seen[0].message)
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight  # clones
    ours, theirs = _copy(ours, theirs)
    _same_forward(ours, theirs, [_seq(5, 2, False)], {})
    dec_t = torch.nn.TransformerDecoder(_layers(torch, "TransformerDecoderLayer"), 2)
    dec_o = rg.nn.TransformerDecoder(_layers(rg, "TransformerDecoderLayer"), 2)
    dec_o, dec_t = _copy(dec_o, dec_t)
    _same_forward(dec_o, dec_t, [_seq(3, 2, False), _seq(5, 2, False)],
                  {"tgt_mask": _masks(3, 3, 2)[1]})


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer(batch_first):
    ours, theirs = _twins("Transformer", d_model=E, nhead=H, num_encoder_layers=2,
                          num_decoder_layers=1, dim_feedforward=FF, batch_first=batch_first)
    src, tgt = _seq(6, 3, batch_first), _seq(4, 3, batch_first)
    mask_o = rg.nn.Transformer.generate_square_subsequent_mask(4)
    mask_t = torch.nn.Transformer.generate_square_subsequent_mask(4)
    close(mask_o, mask_t, rtol=0, atol=0, what="causal mask")
    src_pad, _ = _masks(6, 6, 3)
    _same_forward(ours, theirs, [src, tgt], {"tgt_mask": mask_t.numpy(),
                                             "src_key_padding_mask": src_pad,
                                             "memory_key_padding_mask": src_pad})


def test_nested_tensor_fast_path_zeroes_padded_positions():
    # eval, no gradient, batch_first, a padding mask at the end of rows: PyTorch drops the
    # padded tokens, so their outputs are 0 before the final norm
    layer_t = torch.nn.TransformerEncoderLayer(E, H, FF, batch_first=True)
    layer_o = rg.nn.TransformerEncoderLayer(E, H, FF, batch_first=True)
    ours, theirs = _copy(rg.nn.TransformerEncoder(layer_o, 2, rg.nn.LayerNorm(E)),
                         torch.nn.TransformerEncoder(layer_t, 2, torch.nn.LayerNorm(E)))
    src = _seq(5, 3, True)
    pad, _ = _masks(5, 5, 3)
    for grad, device in ((False, None), (True, None), (False, "cpu")):
        # a default device in force turns PyTorch's fast path off as well
        rg.set_default_device(device), torch.set_default_device(device)
        try:
            with rg.set_grad_enabled(grad), torch.set_grad_enabled(grad):
                out_o = ours(rg.tensor(src), src_key_padding_mask=rg.tensor(pad))
                out_t = theirs(torch.tensor(src), src_key_padding_mask=torch.tensor(pad))
        finally:
            rg.set_default_device(None), torch.set_default_device(None)
        close(out_o, out_t, rtol=1e-5, atol=1e-5, what=f"grad {grad}, device {device}")
        assert (out_t[1, -1].abs().sum() == 0) == (not grad and device is None)


ERRORS = [
    lambda nn: nn.TransformerEncoderLayer(E, H, activation="tanh"),
    lambda nn: nn.Transformer(E, H, 1, 1, FF)(_t(nn, (5, 2, E)), _t(nn, (4, 3, E))),
    lambda nn: nn.Transformer(E, H, 1, 1, FF)(_t(nn, (5, 2, E)), _t(nn, (4, 2, E + 1))),
]


def _t(nn, shape):
    lib = rg if nn is rg.nn else torch
    return lib.zeros(shape)


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_errors_match(index):
    def error(nn):
        with pytest.raises(Exception) as info:
            ERRORS[index](nn)
        return type(info.value).__name__, str(info.value)
    assert error(rg.nn) == error(torch.nn)


def test_attention_masks_of_either_type():
    ours, theirs = _twins("MultiheadAttention", E, H)
    q = _seq(4, 3, False)
    pad, causal = _masks(4, 4, 3)
    float_pad = np.where(pad, -np.inf, 0.0).astype("float32")
    for kwargs in ({"key_padding_mask": float_pad}, {"key_padding_mask": float_pad,
                                                     "attn_mask": causal},
                   {"key_padding_mask": pad, "attn_mask": causal}):
        _same_forward(_Out0(ours), _Out0(theirs), [q, q, q], kwargs)

    def error(lib, module):
        x = lib.tensor(q)
        with pytest.raises(AssertionError) as info:
            module(x, x, x, key_padding_mask=lib.tensor(pad.astype("int64")))
        return str(info.value)
    assert error(rg, ours) == error(torch, theirs)


class _Out0:
    """The attention output alone (its weights aside), as a module-like callable."""

    def __init__(self, module):
        self.module = module

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)[0]

    def named_parameters(self):
        return self.module.named_parameters()

    def zero_grad(self):
        self.module.zero_grad()
