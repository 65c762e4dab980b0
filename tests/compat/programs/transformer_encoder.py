"""Attention models: a hand-written causal self-attention head, nn.MultiheadAttention, and
an nn.TransformerEncoder sequence classifier with a sinusoidal positional encoding, as the
"language modeling with nn.Transformer" tutorial builds them."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def fixed_init(model, offset=0.0):
    # deterministic weights in place of random initialisation (remotegrad's RNG differs)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            k = torch.arange(p.numel(), dtype=torch.float32)
            p.copy_((torch.cos(0.7 * k + i + offset) * 0.2).reshape(p.shape))
            if name.endswith("norm1.weight") or name.endswith("norm2.weight"):
                p.fill_(1.0)


class Head(nn.Module):
    def __init__(self, d_model, head_size, block):
        super().__init__()
        self.key = nn.Linear(d_model, head_size, bias=False)
        self.query = nn.Linear(d_model, head_size, bias=False)
        self.value = nn.Linear(d_model, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block, block)))

    def forward(self, x):
        B, T, C = x.shape
        k, q = self.key(x), self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        return wei @ self.value(x)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=32):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):  # (seq, batch, d_model)
        return x + self.pe[:x.size(0)]


class Classifier(nn.Module):
    def __init__(self, ntoken, d_model=8, nhead=2, d_hid=16, nlayers=2, nclass=3):
        super().__init__()
        self.embedding = nn.Embedding(ntoken, d_model)
        self.pos_encoder = PositionalEncoding(d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout=0.0)
        self.transformer_encoder = nn.TransformerEncoder(layer, nlayers,
                                                         enable_nested_tensor=False)
        self.head = nn.Linear(d_model, nclass)
        self.d_model = d_model

    def forward(self, src, src_mask=None):
        x = self.pos_encoder(self.embedding(src) * math.sqrt(self.d_model))
        x = self.transformer_encoder(x, src_mask)
        return self.head(x.mean(dim=0))


x = torch.linspace(-1, 1, 2 * 5 * 8).reshape(2, 5, 8)
head = Head(8, 4, 6)
fixed_init(head)
out = head(x)
print("head", out.shape, out.grad_fn.name())
print(out[0])
print(list(head.state_dict().keys()))

mha = nn.MultiheadAttention(8, 2, batch_first=True)
fixed_init(mha, 1.0)
attn_out, attn_weights = mha(x, x, x)
print("mha", attn_out.shape, attn_weights.shape)
print(attn_weights[1, 0])
print(attn_out[1, -1])
mask = nn.Transformer.generate_square_subsequent_mask(5)
print(mask)
_, causal_weights = mha(x, x, x, attn_mask=mask)
print(causal_weights[0, 2])

model = Classifier(ntoken=10)
fixed_init(model, 2.0)
print(sum(p.numel() for p in model.parameters()), "parameters")
src = torch.tensor([[1, 4, 2], [3, 3, 9], [0, 5, 7], [8, 1, 6]])  # (seq=4, batch=3)
labels = torch.tensor([0, 2, 1])
optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
for step in range(5):
    logits = model(src, nn.Transformer.generate_square_subsequent_mask(4))
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    print(f"step {step} loss {loss.item():.4f}")
model.eval()
with torch.no_grad():
    print(model(src).softmax(-1))
