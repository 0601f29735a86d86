"""DCGAN (Radford et al., 2016), sized for 28x28, 32x32 and 64x64 images.

28x28 is built natively from a 7x7 seed (two stride-2 steps) instead of resizing
MNIST-like data to 32x32: no interpolation artefacts, and FID sees the same pixels
the dataset has. 32 and 64 start from 4x4 (three and four steps), as in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganlab.models.layers import (
    DepthToSpaceConvTranspose2d,
    SeedConvTranspose2d,
    SelfModulatedBatchNorm2d,
    SpaceToDepthConv2d,
    batch_layers,
    d_norm_layer,
)


def _seed_size(image_size: int) -> tuple[int, int]:
    """(seed side, number of stride-2 steps) so that seed * 2**steps == image_size."""
    seed = 7 if image_size % 7 == 0 else 4
    steps = round(math.log2(image_size / seed))
    if seed * 2**steps != image_size or steps < 2:
        raise ValueError(f"DCGAN supports image sizes 28, 32 and 64, got {image_size}")
    return seed, steps


class DCGANGenerator(nn.Module):
    """z -> (ngf*2^(steps-1)) x seed x seed -> ... -> C x size x size, tanh output; with
    self_modulation, each BatchNorm's scale and shift are functions of z."""

    def __init__(
        self, z_dim: int, image_shape: tuple[int, int, int], *, ngf: int, self_modulation: bool
    ):
        super().__init__()
        channels, size, _ = image_shape
        seed, steps = _seed_size(size)
        width = ngf * 2 ** (steps - 1)

        def norm(width: int) -> nn.Module:
            if self_modulation:
                return SelfModulatedBatchNorm2d(width, z_dim)
            return nn.BatchNorm2d(width)

        self.self_modulation = self_modulation
        layers: list[nn.Module] = [
            SeedConvTranspose2d(z_dim, width, seed),
            norm(width),
            nn.ReLU(True),
            # (ngf * 2**(steps-1)) x seed x seed
        ]
        for _ in range(steps - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                norm(width // 2),
                nn.ReLU(True),
                # (width / 2) x (2 * side) x (2 * side)
            ]
            width //= 2
        layers += [
            DepthToSpaceConvTranspose2d(width, channels),
            nn.Tanh(),
            # channels x size x size; no BatchNorm on G's output (Radford et al.)
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.view(z.shape[0], -1, 1, 1)
        if not self.self_modulation:
            return self.net(x)
        z = z.view(z.shape[0], -1)
        for layer in self.net:
            x = layer(x, z) if isinstance(layer, SelfModulatedBatchNorm2d) else layer(x)
        return x


class DCGANDiscriminator(nn.Module):
    """C x size x size -> ... -> (ndf*2^(steps-1)) x seed x seed -> 1 logit."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        *,
        ndf: int,
        dropout: float,
        norm: str,
        minibatch_std: bool,
        minibatch_discrimination: bool,
    ):
        super().__init__()
        channels, size, _ = image_shape
        seed, steps = _seed_size(size)
        layers: list[nn.Module] = [
            SpaceToDepthConv2d(channels, ndf),
            nn.LeakyReLU(0.2, inplace=True),
            # ndf x (size / 2) x (size / 2); no BatchNorm on D's input (Radford et al.)
        ]
        width = ndf
        for _ in range(steps - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm != "batch"),
                d_norm_layer(norm, width * 2),
                nn.LeakyReLU(0.2, inplace=True),
                # (width * 2) x (side / 2) x (side / 2)
            ]
            width *= 2
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        batch, extra = batch_layers((width, seed, seed), minibatch_std, minibatch_discrimination)
        self.features = nn.Sequential(*layers, *batch)  # (width + extra) x seed x seed
        self.feature_channels = width + extra
        self.seed = seed
        self.head = self.head_like(1)
        # 1 x 1 x 1: a logit; the loss applies the sigmoid

    def head_like(self, outputs: int) -> nn.Module:
        """A seed x seed conv over the features to `outputs` scores, as the adversarial head.

        Conditional discriminators add heads of their own (ACGAN's class logits)."""
        return nn.Sequential(
            nn.Conv2d(self.feature_channels, outputs, self.seed, 1, 0, bias=False), nn.Flatten()
        )

    def features_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features_of(x)).view(-1)
