"""torch.optim.optimizer's import path (the Optimizer base that custom optimisers subclass)."""

from ._optimizer import Optimizer

__all__ = ["Optimizer"]
