"""Recurrent layers (RNN, LSTM, GRU), composed step by step from catalog ops: PyTorch's
parameter names, layouts, gate orders and initialisation, multi-layer, bidirectional,
batch_first, unbatched input and dropout between layers. The whole unrolled sequence is one
graph: its forward and backward run in one request each."""

from __future__ import annotations

import math

from .. import _creation
from .._tensor import Tensor
from . import functional as F
from . import init
from ._module import Module, Parameter
from .._to import check_device

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        check_device(device)
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        gates = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
                shapes = [(gates, width), (gates, hidden_size)]
                if bias:
                    names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
                    shapes += [(gates,), (gates,)]
                for name, shape in zip(names, shapes):
                    setattr(self, name, Parameter(_creation.empty(*shape, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer: int, suffix: str) -> tuple:
        get = self._parameters.get
        return (get(f"weight_ih_l{layer}{suffix}"), get(f"weight_hh_l{layer}{suffix}"),
                get(f"bias_ih_l{layer}{suffix}"), get(f"bias_hh_l{layer}{suffix}"))

    def _cell(self, xw: Tensor, state, w_hh: Tensor, b_hh: Tensor | None):
        h = state[0] if self.mode == "LSTM" else state
        hw = F.linear(h, w_hh, b_hh)
        if self.mode == "LSTM":
            i, f, g, o = (xw + hw).chunk(4, 1)
            c = i.sigmoid() * g.tanh() + f.sigmoid() * state[1]
            h = o.sigmoid() * c.tanh()
            return h, (h, c)
        if self.mode == "GRU":
            xr, xz, xn = xw.chunk(3, 1)
            hr, hz, hn = hw.chunk(3, 1)
            r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
            n = (xn + r * hn).tanh()
            h = (1 - z) * n + z * h
            return h, h
        h = (xw + hw).tanh() if self.mode == "RNN_TANH" else (xw + hw).relu()
        return h, h

    def _direction(self, x: Tensor, state, layer: int, suffix: str):
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
        steps = F.linear(x, w_ih, b_ih).unbind(0)
        if suffix:
            steps = steps[::-1]
        outputs = []
        for xw in steps:
            h, state = self._cell(xw, state, w_hh, b_hh)
            outputs.append(h)
        if suffix:
            outputs = outputs[::-1]
        from .. import stack
        return stack(outputs), state

    def forward(self, input: Tensor, hx=None):
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if self.batch_first and batched:
            x = x.transpose(0, 1)
        states = self._initial(x, hx, batched)
        suffixes = ("", "_reverse") if self.bidirectional else ("",)
        finals = []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True)
            outs = []
            for d, suffix in enumerate(suffixes):
                out, final = self._direction(x, states[layer * len(suffixes) + d], layer,
                                             suffix)
                outs.append(out)
                finals.append(final)
            from .. import cat
            x = outs[0] if len(outs) == 1 else cat(outs, 2)
        if self.batch_first and batched:
            x = x.transpose(0, 1)
        return self._pack(x, finals, batched)

    def _initial(self, x: Tensor, hx, batched: bool) -> list:
        count = self.num_layers * (2 if self.bidirectional else 1)
        shape = (count, x.shape[1], self.hidden_size)
        if hx is None:
            zeros = _creation.zeros(*shape, dtype=x.dtype)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        elif not batched:
            hx = tuple(h.unsqueeze(1) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(1)
        if self.mode == "LSTM":
            return list(zip(hx[0].unbind(0), hx[1].unbind(0)))
        return list(hx.unbind(0))

    def _pack(self, x: Tensor, finals: list, batched: bool):
        from .. import stack
        if self.mode == "LSTM":
            h_n = stack([h for h, _ in finals])
            c_n = stack([c for _, c in finals])
            if not batched:
                return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
            return x, (h_n, c_n)
        h_n = stack(finals)
        return (x.squeeze(1), h_n.squeeze(1)) if not batched else (x, h_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", **kwargs) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers,
                         **kwargs)


class LSTM(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 **kwargs) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, **kwargs)


class GRU(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 **kwargs) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, **kwargs)
