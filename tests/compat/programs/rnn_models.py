"""Recurrent models in the style of the word-language-model and name-classification
examples: an Embedding feeding an RNN, LSTM or GRU, a linear decoder, a few training steps
with gradient clipping, and hidden state carried (detached) between batches."""

import math

import numpy as np
import torch
import torch.nn as nn


class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers)
        self.decoder = nn.Linear(nhid, ntoken)
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

    def forward(self, input, hidden):
        emb = self.encoder(input)
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(output).view(-1, self.decoder.out_features)
        return nn.functional.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        zeros = torch.zeros(self.nlayers, bsz, self.nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros


def fixed_init(model):
    # a deterministic formula in place of the random initialisation (which differs)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            n = p.numel()
            values = torch.tensor([math.sin(1.3 * k + i) for k in range(n)]) * 0.3
            p.copy_(values.reshape(p.shape))


def repackage_hidden(h):
    return h.detach() if isinstance(h, torch.Tensor) else tuple(repackage_hidden(v) for v in h)


ntoken, bptt, bsz = 11, 5, 3
corpus = torch.tensor(np.arange(bptt * 4 * bsz) * 7 % ntoken).view(-1, bsz)  # (seq, batch)
print(corpus.shape, corpus.dtype)
criterion = nn.NLLLoss()

for rnn_type in ("RNN", "LSTM", "GRU"):
    model = RNNModel(rnn_type, ntoken, 6, 8, 2)
    fixed_init(model)
    print(rnn_type, [name for name, _ in model.rnn.named_parameters()][:4])
    hidden = model.init_hidden(bsz)
    lr = 0.5
    for i in range(0, corpus.size(0) - 1, bptt):
        data, targets = corpus[i:i + bptt], corpus[i + 1:i + 1 + bptt].reshape(-1)
        if data.size(0) != targets.numel() // bsz:
            data = data[:targets.numel() // bsz]
        hidden = repackage_hidden(hidden)
        model.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        print(f"  {rnn_type} batch {i // bptt} loss {loss.item():.4f}"
              f" ppl {math.exp(loss.item()):.3f} grad norm {norm.item():.4f}")
    h = hidden[0] if rnn_type == "LSTM" else hidden
    print(" ", output.shape, h.shape, h.requires_grad, output.grad_fn.name())

# an LSTM used directly, batch_first and bidirectional, as a sequence classifier would
lstm = nn.LSTM(input_size=4, hidden_size=3, batch_first=True, bidirectional=True)
fixed_init(lstm)
x = torch.linspace(-1, 1, 2 * 6 * 4).reshape(2, 6, 4)
out, (h_n, c_n) = lstm(x)
print(out.shape, h_n.shape, c_n.shape)
print(out[:, -1])
print(h_n)
gru_cell_like = nn.GRU(4, 3)
fixed_init(gru_cell_like)
y, h = gru_cell_like(x.transpose(0, 1))
y.sum().backward()
print(y.shape, h.shape, gru_cell_like.weight_hh_l0.grad.sum())
