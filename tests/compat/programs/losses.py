"""The loss functions examples reach for, module and functional forms, with their
reductions, class weights, ignore_index, and their gradients (label smoothing, pos_weight on
the module and a wrong reduction: loss_options.py)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

logits = torch.tensor([[1.2, -0.3, 0.4], [0.1, 2.2, -1.0], [-0.5, 0.3, 0.9], [0.0, 0.0, 1.5]],
                      requires_grad=True)
labels = torch.tensor([0, 1, 2, 1])
pred = torch.tensor([0.3, -1.2, 2.5, 0.8], requires_grad=True)
target = torch.tensor([0.0, -1.0, 1.0, 2.0])
prob = torch.sigmoid(pred)
binary = torch.tensor([0.0, 1.0, 1.0, 0.0])


def show(name, loss):
    grads = torch.autograd.grad(loss.sum(), [t for t in (logits, pred) if t.requires_grad],
                                allow_unused=True, materialize_grads=True)
    print(f"{name:24s}", f"{loss.item():.5f}" if loss.dim() == 0 else loss.detach(),
          f"{sum(g.abs().sum() for g in grads).item():.5f}", loss.grad_fn.name())


show("CrossEntropyLoss", nn.CrossEntropyLoss()(logits, labels))
show("cross_entropy weighted",
     F.cross_entropy(logits, labels, weight=torch.tensor([1.0, 2.0, 0.5])))
show("cross_entropy ignore", F.cross_entropy(logits, labels, ignore_index=1))
show("cross_entropy none", F.cross_entropy(logits, labels, reduction="none"))
show("cross_entropy probs", F.cross_entropy(logits, F.softmax(logits.detach() * 2, dim=1)))
show("NLLLoss", nn.NLLLoss()(F.log_softmax(logits, dim=1), labels))
show("MSELoss", nn.MSELoss()(pred, target))
show("mse_loss sum", F.mse_loss(pred, target, reduction="sum"))
show("L1Loss", nn.L1Loss()(pred, target))
show("SmoothL1Loss", nn.SmoothL1Loss(beta=0.5)(pred, target))
show("HuberLoss", nn.HuberLoss(delta=0.7)(pred, target))
show("BCELoss", nn.BCELoss()(prob, binary))
show("BCEWithLogitsLoss", nn.BCEWithLogitsLoss()(pred, binary))
show("bce_with_logits weight", F.binary_cross_entropy_with_logits(pred, binary,
                                                                   weight=torch.tensor(2.0)))
show("KLDivLoss batchmean", nn.KLDivLoss(reduction="batchmean")(
    F.log_softmax(logits, dim=1), F.softmax(torch.ones(4, 3), dim=1)))
other = F.log_softmax(logits.detach().T.reshape(4, 3), 1)
show("kl_div log_target",
     F.kl_div(F.log_softmax(logits, 1), other, reduction="sum", log_target=True))
show("cosine_similarity", F.cosine_similarity(logits[:2], logits[2:], dim=1))
print(nn.CrossEntropyLoss(label_smoothing=0.1), nn.HuberLoss(), nn.MSELoss(reduction="sum"))
