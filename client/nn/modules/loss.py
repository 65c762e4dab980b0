"""torch.nn.modules.loss's import path (with the _Loss base that custom losses subclass)."""

from .._layers import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss,
                       L1Loss, MSELoss, NLLLoss, SmoothL1Loss, _Loss)

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss",
           "L1Loss", "MSELoss", "NLLLoss", "SmoothL1Loss", "_Loss"]
