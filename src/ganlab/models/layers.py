"""Small layers shared by the model families."""

from __future__ import annotations

import math

import torch
from torch import nn


class MinibatchStdDev(nn.Module):
    """Appends the batch's mean feature standard deviation as one more channel (Karras et al.,
    2018): D can see when a batch lacks variety, a remedy for mode collapse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.float().std(dim=0, unbiased=False).mean()
        extra = std.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al., 2016): each sample's features, projected
    through a learned tensor T to `kernels` rows of `kernel_dim`, are compared (L1) with every
    other sample's; D sees how close each sample is to the rest of its batch, so a batch of
    near-copies (a collapsed G) is easy to spot. Appends `kernels` channels (constant over
    the spatial dimensions of conv features)."""

    def __init__(self, in_features: int, kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x.flatten(1) @ self.T.to(x.dtype)).view(-1, self.kernels, self.kernel_dim).float()
        distance = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)  # N x N x kernels
        closeness = torch.exp(-distance).sum(dim=1) - 1  # minus each sample's own exp(0)
        extra = closeness.to(x.dtype).view(*closeness.shape, *(1,) * (x.dim() - 2))
        return torch.cat([x, extra.expand(-1, -1, *x.shape[2:])], dim=1)


def batch_layers(
    shape: tuple[int, ...], minibatch_std: bool, minibatch_discrimination: bool
) -> tuple[list[nn.Module], int]:
    """The layers that let D compare a sample with its batch, on features of `shape` (C or
    C x H x W), and how many channels they add."""
    layers: list[nn.Module] = []
    channels = 0
    if minibatch_discrimination:
        discrimination = MinibatchDiscrimination(math.prod(shape))
        layers.append(discrimination)
        channels += discrimination.kernels
    if minibatch_std:
        layers.append(MinibatchStdDev())
        channels += 1
    return layers, channels


def d_norm_layer(kind: str, channels: int) -> nn.Module:
    """D's normalization: BatchNorm (DCGAN), LayerNorm over C, H, W (WGAN-GP), or none (SNGAN)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


D_NORMS = ("batch", "layer", "none")


def add_spectral_norm_(netD: nn.Module) -> nn.Module:
    """SNGAN (Miyato et al., 2018): spectral normalization on every conv and linear layer of D,
    and on the projection discriminator's class embedding, as Miyato & Koyama (2018) do: an
    unbounded embedding lets the class term outgrow the normalized rest of D."""
    for name, module in list(netD.named_children()):
        if isinstance(module, nn.Conv2d | nn.Linear | nn.Embedding):
            setattr(netD, name, nn.utils.parametrizations.spectral_norm(module))
        else:
            add_spectral_norm_(module)
    return netD
