"""Small layers shared by the model families."""

from __future__ import annotations

import torch
from torch import nn


class MinibatchStdDev(nn.Module):
    """Appends the batch's mean feature standard deviation as one more channel (Karras et al.,
    2018): D can see when a batch lacks variety, a remedy for mode collapse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.float().std(dim=0, unbiased=False).mean()
        extra = std.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)


def d_norm_layer(kind: str, channels: int) -> nn.Module:
    """D's normalization: BatchNorm (DCGAN), LayerNorm over C, H, W (WGAN-GP), or none (SNGAN)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


D_NORMS = ("batch", "layer", "none")


def add_spectral_norm_(netD: nn.Module) -> nn.Module:
    """SNGAN (Miyato et al., 2018): spectral normalization on every conv and linear layer of D."""
    for name, module in list(netD.named_children()):
        if isinstance(module, nn.Conv2d | nn.Linear):
            setattr(netD, name, nn.utils.parametrizations.spectral_norm(module))
        else:
            add_spectral_norm_(module)
    return netD
