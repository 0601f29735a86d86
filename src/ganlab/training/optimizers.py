"""The optimizers params.yaml names (g_optimizer, d_optimizer), for every family."""

from __future__ import annotations

import torch
from torch import nn


def optimizer_for(
    name: str, net: nn.Module, lr: float, betas: tuple[float, float]
) -> torch.optim.Optimizer:
    parameters = [p for p in net.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, foreach=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, foreach=True)
    return torch.optim.Adam(parameters, lr=lr, betas=betas, foreach=True)
