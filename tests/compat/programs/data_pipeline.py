"""A custom Dataset and the DataLoader features a data pipeline uses: batching with a
remainder or drop_last, shuffling (printed order-free: the shuffle order comes from the RNG,
which remotegrad draws differently by design), a collate_fn padding variable-length
sequences, random_split and Subset, and a train/validation loop over them."""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split


class SquaresDataset(Dataset):
    def __init__(self, n):
        self.x = torch.arange(n, dtype=torch.float32).unsqueeze(1) / n
        self.y = (self.x ** 2).squeeze(1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return self.x[idx], self.y[idx]


dataset = SquaresDataset(22)
print(len(dataset), dataset[3])
loader = DataLoader(dataset, batch_size=8)
print([tuple(x.shape) for x, _ in loader], len(loader))
print(len(DataLoader(dataset, batch_size=8, drop_last=True)))
features, labels = next(iter(loader))
print(f"Feature batch shape: {features.size()}", f"Labels batch shape: {labels.size()}")

torch.manual_seed(0)
shuffled = DataLoader(dataset, batch_size=5, shuffle=True)
for epoch in range(2):
    seen = torch.cat([y for _, y in shuffled])
    print(epoch, seen.shape, f"{seen.sum().item():.4f}", torch.equal(seen.sort().values, dataset.y))


def pad_collate(batch):
    lengths = torch.tensor([len(seq) for seq, _ in batch])
    padded = torch.zeros(len(batch), int(lengths.max()))
    for i, (seq, _) in enumerate(batch):
        padded[i, :len(seq)] = seq
    return padded, lengths, torch.tensor([label for _, label in batch])


sequences = [(torch.arange(1.0, n + 1), n % 2) for n in (3, 1, 4, 2, 5)]
for padded, lengths, labels in DataLoader(sequences, batch_size=3, collate_fn=pad_collate):
    print(padded, lengths, labels)

train_set, val_set = random_split(dataset, [16, 6], generator=torch.Generator().manual_seed(1))
print(len(train_set), len(val_set), type(train_set).__name__)
every_other = Subset(dataset, list(range(0, 22, 2)))
print(len(every_other), every_other[2][0])
pairs = TensorDataset(torch.arange(6.0).reshape(3, 2), torch.tensor([1, 0, 1]))
print(pairs[1], len(pairs))

model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
with torch.no_grad():
    for i, p in enumerate(model.parameters()):
        p.copy_(torch.linspace(-1, 1, p.numel()).reshape(p.shape) * (0.5 + 0.1 * i))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
ordered_train = DataLoader(Subset(dataset, list(range(16))), batch_size=4)
validation = DataLoader(Subset(dataset, list(range(16, 22))), batch_size=6)
for epoch in range(3):
    model.train()
    for x, y in ordered_train:
        loss = nn.functional.mse_loss(model(x).squeeze(1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val = sum(nn.functional.mse_loss(model(x).squeeze(1), y).item() for x, y in validation)
    print(f"epoch {epoch} train {loss.item():.5f} val {val:.5f}")
