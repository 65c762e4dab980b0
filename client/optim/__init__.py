"""remotegrad.optim: optimisers, as torch.optim."""

from . import lr_scheduler
from ._adam import Adam, AdamW
from ._adam_variants import NAdam, RAdam
from ._adaptive import Adadelta, Adagrad, RMSprop
from ._lbfgs import LBFGS
from ._optimizer import Optimizer
from ._sgd import SGD

__all__ = ["LBFGS", "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "NAdam", "Optimizer",
           "RAdam", "RMSprop", "lr_scheduler"]
