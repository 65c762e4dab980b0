"""remotegrad.optim: optimisers, as torch.optim."""

from ._adam import Adam, AdamW
from ._optimizer import Optimizer
from ._sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
