"""remotegrad.optim.lr_scheduler: learning-rate schedules over an optimiser's param groups,
as torch.optim.lr_scheduler (the chainable, step-by-step forms). The base and the schedules
that are a formula of the epoch live in _lr_base; the others in modules of their own."""

from ._lr_base import (EPOCH_DEPRECATION_WARNING, CosineAnnealingLR,  # noqa: F401
                       ExponentialLR, LambdaLR, LRScheduler, MultiStepLR, StepLR)
from ._lr_cyclic import CyclicLR, OneCycleLR
from ._lr_factor import ConstantLR, LinearLR, MultiplicativeLR, PolynomialLR
from ._lr_plateau import ReduceLROnPlateau
from ._lr_restarts import CosineAnnealingWarmRestarts
from ._lr_sequential import ChainedScheduler, SequentialLR


class _LRScheduler(LRScheduler):
    """The base's old name, which custom schedulers still subclass (as PyTorch keeps it)."""

__all__ = ["ChainedScheduler", "ConstantLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "CyclicLR", "ExponentialLR", "LRScheduler",
           "LambdaLR", "LinearLR", "MultiStepLR", "MultiplicativeLR", "OneCycleLR",
           "PolynomialLR", "ReduceLROnPlateau", "SequentialLR", "StepLR"]
