"""The nn.Module API a fine-tuning script uses: named_modules and children, an init
function through apply, buffers and BatchNorm's running statistics in train and eval mode,
freezing a backbone with requires_grad_(False), a new head, forward hooks that capture
activations, ModuleList/ModuleDict, and the state_dict with its buffers."""

import torch
import torch.nn as nn


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.pool = nn.AvgPool2d(2)
        self.blocks = nn.ModuleList([nn.Linear(12, 12) for _ in range(2)])
        self.acts = nn.ModuleDict({"relu": nn.ReLU(), "gelu": nn.GELU()})

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)
        for i, block in enumerate(self.blocks):
            x = self.acts["relu" if i == 0 else "gelu"](block(x))
        return x


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.norm = nn.BatchNorm1d(12)
        self.head = nn.Linear(12, 2)

    def forward(self, x):
        return self.head(self.norm(self.backbone(x)))


def init_weights(m):
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        with torch.no_grad():
            m.weight.copy_(torch.cos(torch.arange(m.weight.numel()) * 0.37).reshape(m.weight.shape))
            m.weight.mul_(0.3)
        nn.init.constant_(m.bias, 0.05)


model = Model()
model.apply(init_weights)
print([name for name, _ in model.named_modules()])
print([name for name, _ in model.named_children()])
print([name for name, _ in model.named_buffers()])
print(model.backbone.bn)
x = torch.linspace(-1, 1, 4 * 1 * 4 * 4).reshape(4, 1, 4, 4)
for _ in range(3):
    out = model(x)
print(out.shape, model.training)
print(model.backbone.bn.running_mean, model.backbone.bn.running_var)
print(model.backbone.bn.num_batches_tracked, model.norm.running_mean[:3])
model.eval()
print(model(x))
model.train()

captured = {}


def save_activation(name):
    def hook(module, inputs, output):
        captured[name] = output.detach()
    return hook


handle = model.backbone.blocks[1].register_forward_hook(save_activation("block1"))
model(x)
handle.remove()
model(x[:2])
print(captured["block1"].shape, f"{captured['block1'].sum().item():.4f}")

# fine-tuning: freeze the backbone, replace and train the head
model.backbone.requires_grad_(False)
model.head = nn.Linear(12, 3)
init_weights(model.head)
trainable = [p for p in model.parameters() if p.requires_grad]
print(len(trainable), sum(p.numel() for p in trainable), sum(p.numel() for p in model.parameters()))
optimizer = torch.optim.SGD(trainable, lr=0.1)
labels = torch.tensor([0, 1, 2, 1])
for step in range(4):
    loss = nn.functional.cross_entropy(model(x), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(step, f"{loss.item():.5f}")
print(model.backbone.conv.weight.grad, model.head.weight.grad.shape)
state = model.state_dict()
print(len(state), [k for k in state if "bn" in k])
print(model.norm.num_batches_tracked, model.backbone.bn.weight.requires_grad)
