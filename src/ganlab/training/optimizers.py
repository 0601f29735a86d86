"""The optimizers params.yaml names (g_optimizer, d_optimizer), for every family, and the
noise-to-image GANs' lr schedule (lr_decay)."""

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


def lr_factor_by_fraction(decay: str, start: float, fraction: float) -> float:
    """What lr is multiplied by when `fraction` of the run is done.

    linear: 1 until `start`, then straight down to 0 at the run's end (Miyato et al.'s SNGAN
    code decays over the whole run, start 0); none: always 1."""
    if decay == "none" or fraction <= start:
        return 1.0
    return max(0.0, (1.0 - fraction) / (1.0 - start))


def set_lr_(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
