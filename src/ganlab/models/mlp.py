"""The fully-connected GAN of Goodfellow et al. (2014), as in the classic Fashion-MNIST lab."""

from __future__ import annotations

import math

import torch
from torch import nn

from ganlab.models.layers import MinibatchStdDev


def _block(n_in: int, n_out: int, dropout: float) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2), nn.Dropout(dropout)]


class MLPGenerator(nn.Module):
    """z (z_dim) -> 32 -> 64 -> 128 -> C*H*W, tanh output in [-1, 1]."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], dropout: float = 0.3):
        super().__init__()
        self.image_shape = image_shape
        self.net = nn.Sequential(
            *_block(z_dim, 32, dropout),
            *_block(32, 64, dropout),
            *_block(64, 128, dropout),
            nn.Linear(128, math.prod(image_shape)),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.flatten(1)).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    """C*H*W -> 128 -> 64 -> 32 -> 1 logit (the loss applies the sigmoid)."""

    def __init__(
        self, image_shape: tuple[int, int, int], dropout: float = 0.3, minibatch_std: bool = False
    ):
        super().__init__()
        self.features = nn.Sequential(
            *_block(math.prod(image_shape), 128, dropout),
            *_block(128, 64, dropout),
            *_block(64, 32, dropout),
            *([MinibatchStdDev()] if minibatch_std else []),
        )
        self.feature_channels = 32 + int(minibatch_std)
        self.head = self.head_like(1)

    def head_like(self, outputs: int) -> nn.Module:
        """A linear layer over the features; conditional discriminators add heads of their own."""
        return nn.Linear(self.feature_channels, outputs)

    def features_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features_of(x)).view(-1)
