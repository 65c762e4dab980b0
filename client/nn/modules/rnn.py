"""torch.nn.modules.rnn's import path."""

from .._rnn import GRU, LSTM, RNN, RNNBase

__all__ = ["GRU", "LSTM", "RNN", "RNNBase"]
