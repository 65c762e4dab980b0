"""Train a small MLP on scikit-learn's bundled digits (8x8 images, 10 classes; no
download) through remotegrad, written as an ordinary PyTorch training loop.

    python examples/train_mlp_digits.py                  # default connection
    python examples/train_mlp_digits.py localhost:50051  # a cluster
    python examples/train_mlp_digits.py local            # the engine in this process

The default connection is $REMOTEGRAD_ADDR if set, else a cluster on localhost:50051 if
one answers, else the engine in this process. Prints a progress bar with the loss and the
time per step, then the test accuracy; exits with status 1 below --target accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import remotegrad as torch
import remotegrad.nn.functional as F
from remotegrad import nn


def load(seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


class Progress:
    """A one-line progress bar: steps done, loss, time per step."""

    def __init__(self, total: int, width: int = 30, stream=sys.stderr) -> None:
        self.total, self.width, self.stream = total, width, stream
        self.done, self.start = 0, time.perf_counter()

    def update(self, loss: float) -> None:
        self.done += 1
        per_step = (time.perf_counter() - self.start) / self.done
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} loss {loss:.4f} "
                          f"{per_step * 1000:.1f} ms/step")
        self.stream.flush()

    def close(self) -> float:
        self.stream.write("\n")
        return (time.perf_counter() - self.start) / max(1, self.done)


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 10))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int,
          lr: float, seed: int) -> float:
    """Minibatch Adam on cross-entropy; returns the mean time per step in seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    steps = epochs * -(-len(x) // batch_size)
    progress = Progress(steps)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            inputs, targets = torch.from_numpy(x[batch]), torch.from_numpy(y[batch])
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            progress.update(loss.item())
    return progress.close()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        predictions = model(torch.from_numpy(x)).argmax(dim=1)
        return (predictions == torch.from_numpy(y)).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", nargs="?", default=None,
                        help="cluster address host:port, or 'local' (default: see above)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.95)
    args = parser.parse_args(argv)
    if args.address:
        torch.connect(args.address)
    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load(args.seed)
    model = build_model()
    per_step = train(model, x_train, y_train, args.epochs, args.batch_size, args.lr, args.seed)
    acc = accuracy(model, x_test, y_test)
    print(f"time per step: {per_step * 1000:.1f} ms")
    print(f"test accuracy: {acc:.2%} ({len(x_test)} held-out digits)")
    return 0 if acc >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
